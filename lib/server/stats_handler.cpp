#include "server/stats_handler.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>
#include <re2/re2.h>

#include "codec/batch.h"
#include "core/labels.h"
#include "pipeline/rule_match.h"

namespace cardinal::server {

namespace {

using json = nlohmann::json;
using pipeline::cardinality::DecisionKind;
using pipeline::cardinality::FamilyState;
using pipeline::cardinality::LabelState;

// Bounds of one response.
constexpr size_t kMaxFamilies = 500;
constexpr size_t kDefaultFamilies = 50;
constexpr size_t kMaxLabels = 64;
constexpr size_t kMaxTop = 20;
constexpr size_t kDefaultTop = 5;
constexpr size_t kMaxResponseBytes = size_t{4} << 20;
constexpr size_t kMaxValueBytes = 128;

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') out += ' ';
    else if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else out += s[i];
  }
  return out;
}

std::string dumpJson(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Response jsonTextResponse(http::status status, std::string text) {
  Response res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(text);
  res.prepare_payload();
  return res;
}

Response jsonResponse(http::status status, const json& body) {
  return jsonTextResponse(status, dumpJson(body));
}

Response jsonError(http::status status, std::string_view error_type, std::string message) {
  return jsonResponse(status, json{{"status", "error"}, {"errorType", error_type}, {"error", std::move(message)}});
}

std::string cut(std::string_view v) {
  if (v.size() <= kMaxValueBytes) return std::string(v);
  size_t n = kMaxValueBytes;
  while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;  // not inside a UTF-8 sequence
  return std::string(v.substr(0, n)) + "...";
}

double round3(double v) { return std::round(v * 1000) / 1000; }

std::optional<size_t> sizeParam(const std::map<std::string, std::string, std::less<>>& q, std::string_view key,
                                size_t def, size_t max, std::string& err) {
  auto it = q.find(key);
  if (it == q.end()) return std::min(def, max);
  size_t v = 0;
  auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  if (ec != std::errc() || end != it->second.data() + it->second.size()) {
    err = "parameter \"" + std::string(key) + "\" must be a non-negative integer";
    return std::nullopt;
  }
  return std::min(v, max);
}

struct LabelRow {
  const LabelState* l;
  double distinct;
};

json labelJson(const LabelState& l, double distinct, const pipeline::cardinality::Config& cfg, size_t top,
               bool enforce, int64_t now) {
  json shapes = json::object();
  double total = 0;
  for (double v : l.shapes) total += v;
  for (size_t i = 0; i < l.shapes.size(); ++i)
    if (l.shapes[i] > 0 && total > 0)
      shapes[std::string(pipeline::cardinality::shapeName(static_cast<pipeline::cardinality::ValueShape>(i)))] =
          round3(l.shapes[i] / total);
  auto hitters = l.top.top(std::max<size_t>(top, cfg.top_values));
  std::vector<uint64_t> counts;
  for (const auto& h : hitters) counts.push_back(h.count);
  json top_values = json::array();
  for (size_t i = 0; i < hitters.size() && i < top; ++i)
    top_values.push_back({{"value", cut(hitters[i].value)}, {"count", hitters[i].count}, {"error", hitters[i].error}});
  const auto& d = l.decision;
  json out = {
      {"label", l.name},
      {"distinct_estimate", std::round(distinct)},
      {"distinct_error", round3(l.values.relativeError())},
      {"class", std::string(pipeline::cardinality::shapeClassName(l.shapeClass()))},
      {"shapes", shapes},
      {"entropy_bits", round3(pipeline::cardinality::distributionEntropyBits(counts, l.top.total(), distinct))},
      {"char_entropy_bits", round3(l.new_values > 0 ? l.char_entropy_sum / l.new_values : 0)},
      {"unique_ratio", round3(l.uniqueRatio())},
      {"limit", l.limit(cfg)},
      {"managed", l.settings.managed},
      {"decision", std::string(pipeline::cardinality::decisionName(d.kind))},
      {"enforced", d.kind != DecisionKind::kKeep && enforce},
      {"reason", d.reason},
      {"since", pipeline::cardinality::formatTime(d.since_ms)},
      {"top_values", top_values},
  };
  if (d.kind == DecisionKind::kNormalize) {
    out["normalizer"] = std::string(pipeline::normalize::normalizerName(d.normalizer));
    if (l.normalized) out["normalized_distinct_estimate"] = std::round(l.normalized->estimate(now));
  }
  if (d.kind == DecisionKind::kFold) out["kept_values"] = d.kept.size();
  return out;
}

}  // namespace

std::map<std::string, std::string, std::less<>> parseQuery(std::string_view target) {
  std::map<std::string, std::string, std::less<>> out;
  auto q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string key = percentDecode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? std::string() : percentDecode(pair.substr(eq + 1));
    out.emplace(std::move(key), std::move(value));  // the first occurrence wins
  }
  return out;
}

Response StatsHandler::stats(std::string_view target) const {
  const auto q = parseQuery(target);
  std::string err;
  auto limit = sizeParam(q, "limit", kDefaultFamilies, kMaxFamilies, err);
  auto labels_max = limit ? sizeParam(q, "labels", 16, kMaxLabels, err) : std::nullopt;
  auto top = labels_max ? sizeParam(q, "top", kDefaultTop, kMaxTop, err) : std::nullopt;
  if (!top) return jsonError(http::status::bad_request, "bad_data", err);
  std::string sort = q.count("sort") ? q.find("sort")->second : "series";
  static const std::vector<std::string> kSorts = {"series", "samples", "rewritten", "distinct", "family"};
  if (std::find(kSorts.begin(), kSorts.end(), sort) == kSorts.end())
    return jsonError(http::status::bad_request, "bad_data",
                     "parameter \"sort\" must be one of series, samples, rewritten, distinct, family");
  std::unique_ptr<RE2> family_re;
  if (auto it = q.find("family"); it != q.end() && !it->second.empty()) {
    RE2::Options opts;
    opts.set_log_errors(false);
    family_re = std::make_unique<RE2>(it->second, opts);
    if (!family_re->ok())
      return jsonError(http::status::bad_request, "bad_data", "parameter \"family\": invalid regex: " + family_re->error());
  }
  std::string decision = q.count("decision") ? q.find("decision")->second : "";
  static const std::vector<std::string> kDecisions = {"", "any", "keep", "normalize", "drop", "fold"};
  if (std::find(kDecisions.begin(), kDecisions.end(), decision) == kDecisions.end())
    return jsonError(http::status::bad_request, "bad_data",
                     "parameter \"decision\" must be one of any, keep, normalize, drop, fold");

  // The states to report: one per tenant when tenants are kept apart.
  struct Source {
    const std::string* tenant;
    pipeline::cardinality::CardinalityState* state;
  };
  std::vector<Source> sources;
  if (d_.tenants) {
    auto it = q.find("tenant");
    if (it != q.end() && !it->second.empty()) {
      pipeline::Tenant* t = d_.tenants->find(it->second);
      if (!t) return jsonError(http::status::not_found, "not_found", "parameter \"tenant\": no such tenant has sent data");
      sources.push_back({&t->name, t->cardinality});
    } else {
      for (pipeline::Tenant* t : d_.tenants->all()) sources.push_back({&t->name, t->cardinality});
    }
  } else {
    if (q.count("tenant") && !q.find("tenant")->second.empty())
      return jsonError(http::status::bad_request, "bad_data", "parameter \"tenant\": tenants are not kept apart (see --tenant.header)");
    sources.push_back({nullptr, &d_.state});
  }
  std::erase_if(sources, [](const Source& src) { return src.state == nullptr; });

  const int64_t now = d_.clock.nowMillis();
  const auto& cfg = d_.state.config();

  // Copy what is needed under each family's lock, then sort and render.
  struct Row {
    std::shared_ptr<FamilyState> f;
    const std::string* tenant = nullptr;
    double series = 0;
    double max_distinct = 0;
    uint64_t samples = 0, rewritten = 0;
  };
  std::vector<Row> rows;
  std::map<std::string, uint64_t> decided;
  size_t families_tracked = 0, memory_bytes = 0;
  uint64_t families_untracked = 0, families_evicted = 0;
  for (const Source& src : sources) {
    families_tracked += src.state->familyCount();
    memory_bytes += src.state->memoryBytes();
    families_untracked += src.state->untrackedFamilies();
    families_evicted += src.state->evictedFamilies();
    for (auto& f : src.state->families()) {
      // totals.labels_by_decision covers every family of the tenants shown, whatever the filters.
      const bool selected = !family_re || RE2::PartialMatch(f->name, *family_re);
      Row row{f, src.tenant};
      bool match = decision.empty();
      {
        std::lock_guard lock(f->mu);
        row.series = f->series.estimate(now);
        for (const auto& l : f->labels) {
          row.max_distinct = std::max(row.max_distinct, l->estimate);
          if (l->decision.kind != DecisionKind::kKeep) ++decided[std::string(decisionName(l->decision.kind))];
          if (decision == "any" ? l->decision.kind != DecisionKind::kKeep
                                : decision == decisionName(l->decision.kind))
            match = true;
        }
      }
      if (!selected || !match) continue;
      row.samples = f->samples_in.load(std::memory_order_relaxed);
      row.rewritten = f->samples_rewritten.load(std::memory_order_relaxed);
      rows.push_back(std::move(row));
    }
  }
  auto key = [&](const Row& r) -> double {
    if (sort == "samples") return static_cast<double>(r.samples);
    if (sort == "rewritten") return static_cast<double>(r.rewritten);
    if (sort == "distinct") return r.max_distinct;
    return r.series;
  };
  std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    auto tie = [](const Row& x, const Row& y) {
      if (x.f->name != y.f->name) return x.f->name < y.f->name;
      return x.tenant && y.tenant && *x.tenant < *y.tenant;
    };
    if (sort == "family") return tie(a, b);
    double ka = key(a), kb = key(b);
    return ka != kb ? ka > kb : tie(a, b);
  });

  // Each family is serialized once: its text counts toward the response bound
  // and is spliced into the body as is.
  std::vector<std::string> families;
  size_t bytes = 0;
  bool truncated = rows.size() > *limit;
  for (size_t i = 0; i < rows.size() && i < *limit; ++i) {
    FamilyState& f = *rows[i].f;
    json fj;
    {
      std::lock_guard lock(f.mu);
      std::vector<LabelRow> labels;
      for (const auto& l : f.labels) labels.push_back({l.get(), l->values.estimate(now)});
      std::sort(labels.begin(), labels.end(), [](const LabelRow& a, const LabelRow& b) {
        return a.distinct != b.distinct ? a.distinct > b.distinct : a.l->name < b.l->name;
      });
      const bool enforce = f.applied->enforce;
      json lj = json::array();
      for (size_t k = 0; k < labels.size() && k < *labels_max; ++k)
        lj.push_back(labelJson(*labels[k].l, labels[k].distinct, cfg, *top, enforce, now));
      fj = {
          {"family", f.name},
          {"series_estimate", std::round(rows[i].series)},
          {"series_error", round3(f.series.relativeError())},
          {"series_limit", f.settings.max_series.value_or(cfg.max_series)},
          {"series_limit_unresolved", f.series_limit_unresolved},
          {"mode", std::string(cfg.dry_run ? "dry-run" : rules::cardinalityModeName(f.settings.mode))},
          {"samples_in", rows[i].samples},
          {"samples_rewritten", rows[i].rewritten},
          {"series_rewritten", f.series_rewritten.load(std::memory_order_relaxed)},
          {"first_seen", pipeline::cardinality::formatTime(f.first_seen_ms)},
          {"last_seen", pipeline::cardinality::formatTime(f.last_seen_ms)},
          {"labels_total", f.labels.size()},
          {"untracked_labels", f.untracked_labels},
          {"labels", std::move(lj)},
      };
      if (rows[i].tenant) fj["tenant"] = *rows[i].tenant;
    }
    std::string text = dumpJson(fj);
    if (bytes + text.size() > kMaxResponseBytes) {
      truncated = true;
      break;
    }
    bytes += text.size();
    families.push_back(std::move(text));
  }
  json decisions = json::object();
  for (const auto& [k, v] : decided) decisions[k] = v;
  const int64_t sub_ms = cfg.window.sub_window_ms;
  json body = {
      {"status", "success"},
      {"data",
       {
           {"generated_at", pipeline::cardinality::formatTime(now)},
           {"dry_run", cfg.dry_run},
           {"window", {{"sub_windows", cfg.window.sub_windows}, {"sub_window_seconds", sub_ms / 1000},
                       {"seconds", sub_ms / 1000 * cfg.window.sub_windows}}},
           {"limits", {{"identifier", cfg.identifier_limit}, {"enumerated", cfg.enum_limit},
                       {"max_series", cfg.max_series}}},
           {"totals",
            {{"families_tracked", families_tracked},
             {"families_untracked", families_untracked},
             {"families_evicted", families_evicted},
             {"memory_bytes", memory_bytes},
             {"memory_cap_bytes", cfg.max_memory_bytes},
             {"labels_by_decision", decisions}}},
           {"families_matching", rows.size()},
           {"truncated", truncated},
           {"families", json::array()},
       }},
  };
  std::string text = dumpJson(body);
  // Keys are dumped in sorted order, so the one empty `"families":[]` is the data's.
  static constexpr std::string_view kSlot = "\"families\":[]";
  const size_t at = text.find(kSlot);
  std::string joined;
  joined.reserve(bytes + families.size());
  for (size_t i = 0; i < families.size(); ++i) {
    if (i) joined += ',';
    joined += families[i];
  }
  text.insert(at + kSlot.size() - 1, joined);
  return jsonTextResponse(http::status::ok, std::move(text));
}

namespace {

// `name{a="b", c="d"}`, `{__name__="name", a="b"}` or `name`.
core::Result<std::vector<std::pair<std::string, std::string>>> parseSelector(std::string_view s) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = 0;
  auto skipSpace = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  };
  auto isNameChar = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
  };
  skipSpace();
  size_t start = i;
  while (i < s.size() && isNameChar(s[i], i == start)) ++i;
  if (i > start) out.emplace_back("__name__", std::string(s.substr(start, i - start)));
  skipSpace();
  if (i < s.size() && s[i] == '{') {
    ++i;
    for (;;) {
      skipSpace();
      if (i < s.size() && s[i] == '}') {
        ++i;
        break;
      }
      size_t ns = i;
      while (i < s.size() && isNameChar(s[i], i == ns) && s[i] != ':') ++i;
      if (i == ns) return core::Error{"expected a label name at position " + std::to_string(i)};
      std::string name(s.substr(ns, i - ns));
      skipSpace();
      if (i >= s.size() || s[i] != '=') return core::Error{"expected = after label \"" + name + "\""};
      ++i;
      skipSpace();
      if (i >= s.size() || s[i] != '"') return core::Error{"expected a quoted value for label \"" + name + "\""};
      ++i;
      std::string value;
      for (;;) {
        if (i >= s.size()) return core::Error{"unterminated value of label \"" + name + "\""};
        char c = s[i++];
        if (c == '"') break;
        if (c == '\\' && i < s.size()) {
          char e = s[i++];
          value += e == 'n' ? '\n' : e;
        } else value += c;
      }
      out.emplace_back(std::move(name), std::move(value));
      skipSpace();
      if (i < s.size() && s[i] == ',') ++i;
      else if (i < s.size() && s[i] == '}') continue;
      else if (i >= s.size()) return core::Error{"expected } to close the selector"};
    }
  }
  skipSpace();
  if (i != s.size()) return core::Error{"unexpected text at position " + std::to_string(i)};
  std::sort(out.begin(), out.end());
  for (size_t k = 1; k < out.size(); ++k)
    if (out[k].first == out[k - 1].first) return core::Error{"label \"" + out[k].first + "\" given twice"};
  out.erase(std::remove_if(out.begin(), out.end(), [](const auto& p) { return p.second.empty(); }), out.end());
  if (std::none_of(out.begin(), out.end(), [](const auto& p) { return p.first == "__name__"; }))
    return core::Error{"the series needs a metric name"};
  return out;
}

json labelsJson(std::span<const core::LabelView> labels) {
  json out = json::object();
  for (const auto& l : labels) out[std::string(l.name)] = cut(l.value);
  return out;
}

}  // namespace

Response StatsHandler::explain(std::string_view target) const {
  const auto q = parseQuery(target);
  auto it = q.find("series");
  if (it == q.end() || it->second.empty())
    return jsonError(http::status::bad_request, "bad_data",
                     "parameter \"series\" is required, e.g. series=http_requests_total{path=\"/users/1\"}");
  auto parsed = parseSelector(it->second);
  if (!parsed) return jsonError(http::status::bad_request, "bad_data", "parameter \"series\": " + parsed.error());

  codec::SeriesBatch batch;
  for (const auto& [name, value] : *parsed) batch.labels.push_back({name, value});
  codec::Series s;
  s.label_count = static_cast<uint32_t>(batch.labels.size());
  s.hash = core::hashLabels(batch.labels);
  s.input_hash = s.hash;
  batch.series.push_back(s);

  auto snapshot = d_.rules.current();
  std::vector<std::string> notes;
  // With tenants, `tenant=ID` (default: the default tenant) picks whose state explains.
  pipeline::DecisionCache* cache = &d_.cache;
  pipeline::TypeTable* types = &d_.types;
  pipeline::merge::MergeState* merge = d_.merge;
  pipeline::cardinality::CardinalityState* state = &d_.state;
  if (d_.tenants) {
    auto t_it = q.find("tenant");
    pipeline::Tenant* t = t_it != q.end() && !t_it->second.empty() ? d_.tenants->find(t_it->second)
                                                                   : &d_.tenants->defaultTenant();
    if (!t) return jsonError(http::status::not_found, "not_found", "parameter \"tenant\": no such tenant has sent data");
    cache = t->cache;
    types = t->types;
    merge = t->merge;
    if (t->cardinality) state = t->cardinality;
  }
  pipeline::StageContext ctx{d_.clock, snapshot.generation, cache, d_.dry_run, snapshot.rules.get(), types,
                             merge, state, &notes};
  // Values are shown only once the sanitize stage has run: the response never
  // echoes a sensitive value, not even the caller's own.
  json steps = json::array();
  json input_names = json::array();
  for (const auto& [name, value] : *parsed) input_names.push_back(name);
  bool sanitized = false;
  d_.explain_pipeline.explain(batch, ctx, [&](std::string_view stage, pipeline::Outcome outcome) {
    const codec::Series& cur = batch.series[0];
    sanitized = sanitized || stage == "sanitize";
    json step = {{"stage", std::string(stage)},
                 {"changed", outcome != pipeline::Outcome::kUnchanged},
                 {"dropped", cur.dropped}};
    if (!cur.dropped && sanitized) step["labels"] = labelsJson(batch.labelsOf(cur));
    steps.push_back(std::move(step));
  });

  // The engine's view of the family and of each label of the input.
  const auto shape = pipeline::seriesShape(batch.labelsOf(batch.series[0]));
  const auto info = types->resolve(shape.name, shape.has_le, shape.has_quantile);
  json card = {{"family", std::string(info.family)},
               {"type", std::string(pipeline::metricTypeName(info.type))},
               {"type_source", std::string(pipeline::typeSourceName(info.source))}};
  if (auto f = state->find(info.family)) {
    std::lock_guard lock(f->mu);
    card["tracked"] = true;
    card["series_estimate"] = std::round(f->series.estimate(d_.clock.nowMillis()));
    json labels = json::array();
    for (const auto& [name, value] : *parsed) {
      const LabelState* l = nullptr;
      for (const auto& lp : f->labels)
        if (lp->name == name) l = lp.get();
      if (!l) continue;
      labels.push_back(json{{"label", name},
                        {"distinct_estimate", std::round(l->estimate)},
                        {"decision", std::string(decisionName(l->decision.kind))},
                        {"enforced", l->decision.kind != DecisionKind::kKeep && f->applied->enforce},
                        {"reason", l->decision.reason},
                        {"since", pipeline::cardinality::formatTime(l->decision.since_ms)}});
    }
    card["labels"] = std::move(labels);
  } else {
    card["tracked"] = false;
  }
  const codec::Series& out = batch.series[0];
  json body = {{"status", "success"},
               {"data",
                {{"input_labels", input_names},
                 {"output", out.dropped ? json(nullptr) : labelsJson(batch.labelsOf(out))},
                 {"dropped", out.dropped},
                 {"steps", std::move(steps)},
                 {"notes", notes},
                 {"cardinality", std::move(card)}}}};
  return jsonResponse(http::status::ok, body);
}

}  // namespace cardinal::server
