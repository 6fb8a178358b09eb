// libFuzzer target: the whole write path. Each input is a few write requests
// (format: pipeline_fuzz.h), run through the proxy's default pipeline as
// app/main.cpp builds it (pipeline::Assembly: built-in default rules and
// detectors, normalize, sanitize, relabel, the cardinality engine with small
// limits so automatic decisions trigger, the merge engine), then encoded as
// the write handler encodes for the upstream, and decoded again. The clock is
// a ManualClock stepped by the input; the merge engine is flushed when the
// input says so and at the end (after its inputs went stale). State is fresh
// for every input, so every finding replays from its file alone.
//
// Aborts, with a message on stderr, when an output (forwarded request or
// merged-output request):
//  - does not decode (with the decoder of the protocol it was encoded in);
//  - has a series whose label names are not sorted, unique and non-empty;
//  - carries a label name, an unprotected label value, an exemplar label or a
//    metadata HELP/UNIT text the enabled detectors flag (same detector API and
//    RuleSet settings as the sanitize stage);
//  - contains, in bytes outside every decoded string, a raw input label name
//    or value the detectors flagged (inside a decoded string it is checked as
//    that string: e.g. a protected `instance` may hold an address);
//  - has two samples (or native histograms) for one series with one timestamp
//    (for a forwarded request only when its input had none: a sender's own
//    duplicates are the sender's data, passed through as received);
// and, across merge flushes of one input: a merged output's timestamps do not
// strictly increase, or a merged counter output goes down (until its stale
// marker frees it).
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "codec/decode.h"
#include "codec/decode_v2.h"
#include "codec/encode_v2.h"
#include "codec/snappy_codec.h"
#include "core/clock.h"
#include "core/labels.h"
#include "core/log.h"
#include "pipeline/assembly.h"
#include "pipeline/family.h"
#include "pipeline/merge/merge_state.h"
#include "pipeline/rule_match.h"
#include "pipeline/sanitize/detectors.h"
#include "pipeline/sanitize/redactor.h"
#include "pipeline_fuzz.h"
#include "rules/rule_set.h"
#include "rules/rules_manager.h"

using namespace cardinal;

namespace {

// Whether a decoded request has two samples (or histograms) for one label set at one timestamp.
bool hasDuplicateTimestamps(const codec::SeriesBatch& b) {
  std::map<std::string, std::set<int64_t>> seen;
  for (const auto& s : b.series) {
    std::string key;
    for (const auto& l : b.labelsOf(s)) key.append(l.name).append(1, '\0').append(l.value).append(1, '\0');
    auto& ts = seen[key];
    for (const auto& p : b.samplesOf(s))
      if (!ts.insert(p.timestamp).second) return true;
    for (const auto& h : b.histogramsOf(s))
      if (!ts.insert(h.timestamp).second) return true;
  }
  return false;
}

[[noreturn]] void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fputs("pipeline_fuzz: invariant violated: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
  std::abort();
}

// Built once: the default rules (compiled in) and a fixed HMAC key.
struct Fixed {
  rules::RulesManager rules{{}, nullptr};
  pipeline::sanitize::Redactor redactor{std::vector<uint8_t>(32, 0x5a)};
  rules::RulesManager::Snapshot snapshot;
  pipeline::AssemblyOptions options;
  codec::Limits limits;
  Fixed() {
    core::setLogLevel(core::LogLevel::kError);  // decisions are logged at info: not per fuzz input
    if (!rules.reload()) fail("the built-in default rules do not load");
    snapshot = rules.current();
    options.cache_series = 4096;
    options.merge_max_inputs = 4096;
    options.merge_max_outputs = 1024;
    options.merge_stale_after = std::chrono::minutes(5);
    options.cardinality_window = std::chrono::minutes(10);
    options.cardinality_sub_windows = 10;
    options.cardinality_identifier_limit = 4;
    options.cardinality_enum_limit = 8;
    options.cardinality_max_series = 24;
    options.cardinality_max_families = 64;
    options.cardinality_max_labels = 16;
    options.cardinality_max_memory = 8u << 20;
    options.cardinality_release_hold = std::chrono::minutes(2);
    options.cardinality_seen_filter_bits = 1u << 14;
    limits.max_decompressed_bytes = 1 << 20;
  }
};

const Fixed& fixed() {
  static const Fixed f;
  return f;
}

struct MergedSeriesState {
  int64_t last_ts = 0;
  double last_value = 0;
  bool counter = false;
};

class Checker {
 public:
  explicit Checker(const rules::RuleSet& rs, const pipeline::TypeTable& types) : rs_(rs), types_(types) {}

  // Raw label values of a decoded input that the detectors flag: they must not reach the output.
  void collectSensitive(const codec::SeriesBatch& in) {
    for (const auto& s : in.series)
      for (const auto& l : in.labelsOf(s)) {
        if (rs_.detectors.enabled && pipeline::sanitize::detect("", l.name, rs_.detectors.enabled))
          raw_.emplace(l.name);
        if (l.value.empty() || pipeline::labelRules(rs_, l.name).is_protected) continue;
        if (pipeline::sanitize::detect(l.name, l.value, rs_.detectors.enabled)) raw_.emplace(l.value);
      }
  }

  // One output request: `bytes` as sent (uncompressed), in `protocol`. `merged`: from the merge engine.
  void checkOutput(std::string_view bytes, bool v2, bool merged, const char* what, bool check_duplicates = true) {
    codec::SeriesBatch out;
    auto st = v2 ? codec::decodeRequestV2(bytes, fixed().limits, out)
                 : codec::decodeWriteRequest(bytes, fixed().limits, out);
    if (!st) fail("%s does not decode: %s", what, st.error().c_str());
    std::vector<std::string_view> strings;  // every string of the output, for the raw-value check
    std::map<std::string, std::set<int64_t>> timestamps;
    const auto& det = rs_.detectors;
    // What redaction writes (a hash token, the mask) is flagged by the detectors
    // in labels named like secrets (any value of 3+ characters): not a survivor.
    auto redacted = [&](std::string_view v) { return pipeline::sanitize::Redactor::isToken(v) || v == det.mask; };
    for (const auto& s : out.series) {
      ++output_series_;
      if (merged) merged_samples_ += s.sample_count + s.histogram_count;
      auto labels = out.labelsOf(s);
      std::string key;
      for (size_t k = 0; k < labels.size(); ++k) {
        const auto& l = labels[k];
        if (l.name.empty()) fail("%s: empty label name", what);
        if (k > 0 && !(labels[k - 1].name < l.name)) fail("%s: labels not sorted and unique at %zu", what, k);
        if (auto d = det.enabled ? pipeline::sanitize::detect("", l.name, det.enabled) : std::nullopt)
          fail("%s: a label name the %s detector flags survived (%zu bytes)", what,
               std::string(pipeline::sanitize::detectorName(*d)).c_str(), l.name.size());
        if (det.enabled && !l.value.empty() && !redacted(l.value) && !pipeline::labelRules(rs_, l.name).is_protected &&
            pipeline::sanitize::detect(l.name, l.value, det.enabled))
          fail("%s: an unredacted sensitive value survived in label %.*s", what, static_cast<int>(l.name.size()),
               l.name.data());
        strings.push_back(l.name);
        strings.push_back(l.value);
        key.append(l.name).push_back('\0');
        key.append(l.value).push_back('\0');
      }
      if (det.exemplars && det.enabled)
        for (const auto& e : out.exemplarsOf(s))
          for (const auto& l : out.labelsOf(e)) {
            if (!l.value.empty() && !redacted(l.value) && pipeline::sanitize::detect(l.name, l.value, det.enabled))
              fail("%s: an unredacted sensitive exemplar label %.*s survived", what, static_cast<int>(l.name.size()),
                   l.name.data());
            strings.push_back(l.name);
            strings.push_back(l.value);
          }
      auto& ts = timestamps[key];
      for (const auto& p : out.samplesOf(s))
        if (!ts.insert(p.timestamp).second && check_duplicates)
          fail("%s: two samples for one series at one timestamp", what);
      for (const auto& h : out.histogramsOf(s))
        if (!ts.insert(h.timestamp).second && check_duplicates)
          fail("%s: two samples for one series at one timestamp (histogram)", what);
      if (merged) checkMerged(key, out, s, what);
    }
    for (const auto& m : out.metadata) {
      for (std::string_view text : {m.help, m.unit})
        if (det.enabled && !text.empty() && !redacted(text) &&
            pipeline::sanitize::detect(&text == &m.help ? "help" : "unit", text, det.enabled))
          fail("%s: a metadata text the detectors flag survived", what);
      strings.push_back(m.family);
      strings.push_back(m.help);
      strings.push_back(m.unit);
    }
    // An occurrence of a flagged raw value in the output bytes is a leak unless
    // it lies in or across a decoded string (whose own check is above: a
    // protected `instance` may hold an address; a value the fuzzer built
    // across protobuf framing may reappear across the framing of two clean
    // strings). What remains is in bytes no decoder reads: a leak.
    std::vector<std::pair<size_t, size_t>> ranges;  // decoded strings that are views into `bytes`
    for (std::string_view str : strings)
      if (str.data() >= bytes.data() && str.data() + str.size() <= bytes.data() + bytes.size())
        ranges.emplace_back(str.data() - bytes.data(), str.data() - bytes.data() + str.size());
    for (const auto& v : raw_) {
      for (size_t at = bytes.find(v); at != std::string_view::npos; at = bytes.find(v, at + 1)) {
        const size_t end = at + v.size();
        bool explained = std::any_of(ranges.begin(), ranges.end(),
                                     [&](const auto& r) { return r.first < end && at < r.second; });
        if (!explained) fail("%s: a raw value that was redacted (%zu bytes) appears in the output bytes", what, v.size());
      }
    }
  }

  void sawMetadata(const codec::SeriesBatch& in) { metadata_seen_ |= !in.metadata.empty(); }
  size_t rawValues() const { return raw_.size(); }
  size_t outputSeries() const { return output_series_; }
  size_t mergedSamples() const { return merged_samples_; }

 private:
  void checkMerged(const std::string& key, const codec::SeriesBatch& out, const codec::Series& s, const char* what) {
    auto labels = out.labelsOf(s);
    bool has_le = false, has_quantile = false;
    for (const auto& l : labels) {
      has_le |= l.name == "le";
      has_quantile |= l.name == "quantile";
    }
    const bool counter = s.histogram_count == 0 && !metadata_seen_ &&
                         types_.resolve(core::metricName(labels), has_le, has_quantile).role == pipeline::Role::kCounter;
    auto check = [&](int64_t ts, double value, bool stale) {
      auto it = merged_.find(key);
      if (it != merged_.end()) {
        if (ts <= it->second.last_ts) fail("%s: merged output timestamps do not increase across flushes", what);
        if (counter && it->second.counter && !stale && !std::isnan(value) && value < it->second.last_value)
          fail("%s: merged counter output went down (%g -> %g)", what, it->second.last_value, value);
      }
      if (stale) {
        merged_.erase(key);  // freed: a returning input starts a new output
        return;
      }
      auto& m = merged_[key];
      m.last_ts = ts;
      if (!std::isnan(value)) m.last_value = value;
      m.counter = counter && (it == merged_.end() || it->second.counter);
    };
    for (const auto& p : out.samplesOf(s)) check(p.timestamp, p.value, pipeline::merge::isStaleMarker(p.value));
    for (const auto& h : out.histogramsOf(s)) check(h.timestamp, NAN, pipeline::merge::isStaleMarker(h.sum));
  }

  const rules::RuleSet& rs_;
  const pipeline::TypeTable& types_;
  std::set<std::string> raw_;
  std::map<std::string, MergedSeriesState> merged_;
  bool metadata_seen_ = false;
  size_t output_series_ = 0, merged_samples_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixed& f = fixed();
  core::ManualClock clock;
  pipeline::Assembly assembly(f.options, pipeline::PipelineConfig{nullptr, nullptr, &f.redactor});
  pipeline::WriteState state = assembly.writeState();
  Checker checker(*f.snapshot.rules, assembly.types);
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string plain, encoded, decompressed;
  bool out_v2 = false;

  auto flush = [&] {
    assembly.cardinality_state.maintain(clock.nowMillis());  // the 5 s maintenance timer
    for (const auto& body : assembly.emitRequests(clock.nowMillis(), out_v2 ? codec::WireProtocol::kV2 : codec::WireProtocol::kV1)) {
      if (!codec::decompress(*body, f.limits, decompressed)) fail("merged output does not decompress");
      checker.checkOutput(decompressed, out_v2, true, "merged output");
    }
  };

  int requests = 0;
  while (!in.empty() && requests < 16) {
    const uint8_t header = static_cast<uint8_t>(in[0]);
    size_t len = in.size() >= 3 ? static_cast<uint8_t>(in[1]) | (size_t{static_cast<uint8_t>(in[2])} << 8) : 0;
    in.remove_prefix(std::min<size_t>(3, in.size()));
    len = std::min(len, in.size());
    std::string_view body = in.substr(0, len);
    in.remove_prefix(len);
    ++requests;

    clock.advance(std::chrono::milliseconds(fuzz::kClockSteps[(header >> 3) & 7]));
    const bool v2 = header & fuzz::kRecordV2;
    out_v2 = header & fuzz::kRecordOutV2;
    std::string_view request = body;
    if (header & fuzz::kRecordSnappy) {
      if (!codec::decompress(body, f.limits, plain)) continue;
      request = plain;
    }
    codec::SeriesBatch batch;
    auto st = v2 ? codec::decodeRequestV2(request, f.limits, batch) : codec::decodeWriteRequest(request, f.limits, batch);
    if (!st) continue;  // a 400 in the proxy
    checker.collectSensitive(batch);
    const bool sender_duplicates = hasDuplicateTimestamps(batch);
    checker.sawMetadata(batch);
    pipeline::processBatch(assembly.pipeline, batch, f.snapshot, state, clock, false);

    // What the write handler forwards (lib/server/write_handler.cpp): nothing when
    // no series is left (and no 1.0 metadata for a 1.0 upstream), the original
    // body when nothing changed and no translation is needed, else a re-encoding.
    const codec::WireProtocol out_protocol = out_v2 ? codec::WireProtocol::kV2 : codec::WireProtocol::kV1;
    if (batch.liveSeries() > 0 || (!batch.metadata.empty() && !out_v2)) {
      if (!batch.anyChanged() && batch.protocol == out_protocol) {
        checker.checkOutput(request, out_v2, false, "forwarded request (unchanged)", !sender_duplicates);
      } else {
        codec::encodeForProtocol(batch, out_protocol, encoded);
        checker.checkOutput(encoded, out_v2, false, "forwarded request", !sender_duplicates);
      }
    }
    if (header & fuzz::kRecordFlush) flush();
  }
  // The end: flush what is pending, then let every input go stale and flush
  // again (stale markers, state freed).
  flush();
  clock.advance(f.options.merge_stale_after + std::chrono::seconds(1));
  flush();
  // PIPELINE_FUZZ_STATS=1: what the checks saw, to confirm the seeds exercise them.
  static const bool stats = std::getenv("PIPELINE_FUZZ_STATS") != nullptr;
  if (stats) {
    auto [drop, norm, fold] = assembly.cardinality_state.labelsByDecision();
    auto ms = assembly.merge_state.stats();
    std::fprintf(stderr,
                 "pipeline_fuzz: requests %d, output series %zu, merged samples %zu, raw sensitive values %zu, "
                 "cardinality decisions drop %zu normalize %zu fold %zu, merge inputs %zu\n",
                 requests, checker.outputSeries(), checker.mergedSamples(), checker.rawValues(), drop, norm, fold,
                 ms.inputs + ms.tombstones);
  }
  return 0;
}
