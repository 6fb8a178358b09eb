#include "pipeline/sanitize/sanitize_stage.h"

#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/decision_cache.h"
#include "pipeline/family.h"
#include "pipeline/rule_match.h"
#include "pipeline/sanitize/detectors.h"
#include "pipeline/sanitize/redactor.h"
#include "rules/rule_set.h"

namespace cardinal::pipeline {

SanitizeMetrics::SanitizeMetrics(prometheus::Registry& r)
    : redacted(prometheus::BuildCounter()
                   .Name("cardinal_sanitize_redacted_total")
                   .Help("Label values redacted, by what found them (a rule or a detector) and the method.")
                   .Register(r)),
      exemplar_labels_redacted(prometheus::BuildCounter()
                                   .Name("cardinal_sanitize_exemplar_labels_redacted_total")
                                   .Help("Exemplar label values redacted by the detectors.")
                                   .Register(r)
                                   .Add({})) {}

prometheus::Counter& SanitizeMetrics::counter(std::string_view source, rules::RedactMethod method) {
  size_t si = 0;  // "rule"
  for (int d = 0; d < sanitize::kDetectorCount; ++d)
    if (source == sanitize::detectorName(static_cast<sanitize::Detector>(d))) si = 1 + static_cast<size_t>(d);
  const size_t mi = static_cast<size_t>(method);
  if ((si == 0 && source != "rule") || mi >= kMethods)  // not a known pair: the slow, general way
    return redacted.Add({{"source", std::string(source)}, {"method", std::string(rules::redactMethodName(method))}});
  auto& slot = resolved_[si][mi];
  if (auto* c = slot.load(std::memory_order_acquire)) return *c;
  // Family::Add returns the same child for the same labels; racing threads store the same pointer.
  auto* c = &redacted.Add({{"source", std::string(source)}, {"method", std::string(rules::redactMethodName(method))}});
  slot.store(c, std::memory_order_release);
  return *c;
}

namespace {

using codec::LabelView;
using rules::RedactMethod;

enum CachedAction : uint32_t { kClean = 0 };

struct Finding {
  RedactMethod method;
  std::string_view source;  // "rule" or a detector name
  const std::string* mask;
};

}  // namespace

Outcome SanitizeStage::process(codec::SeriesBatch& batch, StageContext& ctx) const {
  const rules::RuleSet* rs = ctx.rules;
  if (!rs || !redactor_) return Outcome::kUnchanged;
  const auto& det = rs->detectors;
  const bool has_rules = rs->hasAction(rules::Action::kRedact);
  if (det.enabled == 0 && !has_rules) return Outcome::kUnchanged;
  bool any = false;
  std::vector<LabelView> scratch;
  std::string token;

  // Tokens are cached per value in the decision cache (the 64-bit truncated
  // HMAC is the payload), so a repeated sensitive value costs a lookup, not an
  // HMAC. Keyed by a 64-bit hash of the value: a collision would give a wrong
  // token, never the raw value.
  auto tokenFor = [&](std::string_view value) -> std::string_view {
    uint64_t key = core::hashBytes(value, 0x7a6f1d2c3b4e5f60ULL);
    uint64_t mac;
    if (auto d = ctx.cache ? ctx.cache->find(key, 0, kTokenCacheStage) : std::nullopt) {
      mac = d->payload;
    } else {
      mac = redactor_->mac64(value);
      if (ctx.cache) ctx.cache->put(key, 0, kTokenCacheStage, {kTokenCacheStage, 0, mac});
    }
    sanitize::Redactor::formatToken(mac, token);
    return batch.intern(token);
  };

  // A redaction in metadata (no series), or in series `si`'s labels.
  auto count = [&](std::string_view source, RedactMethod m, size_t si = SIZE_MAX) {
    if (!metrics_) return;
    if (si == SIZE_MAX) metrics_->counter(source, m).Increment();
    else countSeries(ctx, si, metrics_->counter(source, m));
  };
  // Which finding applies to one label value (rules first, then detectors).
  auto find = [&](const FamilyRules* fr, const LabelView& l) -> std::optional<Finding> {
    const LabelRules lr = labelRules(*rs, l.name);
    if (lr.is_protected) return std::nullopt;
    // A label whose name is itself sensitive (UTF-8 names allow "10.0.0.7:8080"
    // or an address as a name) cannot be hashed in place: the label goes, and
    // the series through the merge engine (found by the pipeline fuzz target).
    if (det.enabled != 0)
      if (auto d = sanitize::detect("", l.name, det.enabled))
        return Finding{RedactMethod::kDropLabel, sanitize::detectorName(*d), &det.mask};
    if (fr) {
      const rules::Rule* hit = nullptr;
      fr->forEach(
          [&](size_t i) {
            const auto& r = rs->rules[i];
            if (r.action != rules::Action::kRedact || !(i < 64 ? lr.names(i) : r.namesLabel(l.name))) return true;
            hit = &r;
            return false;
          },
          lr.mask);
      if (hit) return Finding{hit->method, "rule", &hit->mask};
    }
    if (det.enabled == 0 || l.value.empty()) return std::nullopt;
    if (auto d = sanitize::detect(l.name, l.value, det.enabled)) return Finding{det.action, sanitize::detectorName(*d), &det.mask};
    return std::nullopt;
  };

  // HELP and UNIT texts of metadata: detectors only, hashed or masked.
  for (auto& m : batch.metadata) {
    for (std::string_view* text : {&m.help, &m.unit}) {
      if (text->empty() || det.enabled == 0) continue;
      auto d = sanitize::detect(text == &m.help ? "help" : "unit", *text, det.enabled);
      if (!d) continue;
      if (det.action == RedactMethod::kHash) {
        *text = tokenFor(*text);
      } else {
        *text = batch.intern(det.mask);
      }
      m.changed = true;
      any = true;
      count(sanitize::detectorName(*d), det.action == RedactMethod::kHash ? RedactMethod::kHash : RedactMethod::kMask);
    }
  }

  FamilyMemo families(ctx);
  for (size_t si = 0; si < batch.series.size(); ++si) {
    codec::Series& s = batch.series[si];
    if (s.dropped) continue;
    // Exemplar labels: detectors only, hash or mask (never dropped silently).
    if (det.exemplars && det.enabled != 0) {
      for (const auto& e : batch.exemplarsOf(s)) {
        for (uint32_t k = 0; k < e.label_count; ++k) {
          LabelView& l = batch.exemplar_labels[e.label_begin + k];
          auto d = l.value.empty() ? std::nullopt : sanitize::detect(l.name, l.value, det.enabled);
          if (!d) continue;
          if (det.action == RedactMethod::kHash) {
            l.value = tokenFor(l.value);
          } else {
            l.value = batch.intern(det.mask);
          }
          s.changed = true;
          any = true;
          if (metrics_) metrics_->exemplar_labels_redacted.Increment();
        }
      }
    }
    if (s.planned) continue;  // its labels' redactions were replayed from its plan
    if (ctx.cache) {
      if (auto c = ctx.cache->find(s.hash, ctx.ruleset_generation, kCacheStage); c && c->action == kClean) continue;
    }
    auto labels = batch.labelsOf(s);
    const FamilyRules* fr = nullptr;
    if (has_rules && ctx.types) {
      families.resolve(s, labels);
      fr = &families.rules(*rs);
    }
    bool changed = false, collapse = false, drop_series = false;
    scratch.clear();
    for (const auto& l : labels) {
      auto f = find(fr, l);
      if (!f) {
        scratch.push_back(l);
        continue;
      }
      count(f->source, f->method, si);
      changed = true;
      switch (f->method) {
        case RedactMethod::kHash:
          scratch.push_back({l.name, tokenFor(l.value)});
          break;
        case RedactMethod::kMask:
          scratch.push_back({l.name, batch.intern(*f->mask)});
          collapse = true;
          break;
        case RedactMethod::kDropLabel:
          collapse = true;
          break;
        case RedactMethod::kDropSeries:
          drop_series = true;
          break;
      }
    }
    if (!changed) {
      if (ctx.cache) ctx.cache->put(s.hash, ctx.ruleset_generation, kCacheStage, {kCacheStage, kClean, 0});
      continue;
    }
    any = true;
    if (drop_series) {
      s.dropped = true;
      continue;
    }
    batch.setLabels(s, scratch);
    if (collapse) s.merge = true;  // masked or dropped values can collide: merged
  }
  return any ? Outcome::kModified : Outcome::kUnchanged;
}

}  // namespace cardinal::pipeline
