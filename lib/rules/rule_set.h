#pragma once
// RuleSet: the parsed, validated and compiled content of the rule files.
// Immutable once built; shared read-only by all I/O threads; a reload builds a
// new one and swaps it in (rules_manager.h). Rules select by metric family
// name (exact or RE2 full match) and act on labels.
//
// Order of evaluation for one series (documented in docs/rules.md):
//   1. a matching `keep` rule without labels exempts the series from 2-4;
//   2. `drop` rules: the first match drops the whole series;
//   3. `replace` rules, in file order, each seeing the previous one's result;
//   4. `drop_label` rules: the union of their labels is removed, except
//      protected labels and labels named by a matching `keep` rule.
// Protected labels are never dropped or rewritten.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <re2/re2.h>

#include "pipeline/merge/options.h"
#include "pipeline/normalize/normalizers.h"
#include "pipeline/sanitize/detectors.h"


namespace cardinal::rules {

enum class Action { kKeep, kDrop, kDropLabel, kReplace, kRedact, kNormalize, kCardinality };

// Settings of the cardinality engine for matching families (action `cardinality`).
// Unset fields fall back to the next matching cardinality rule, then to the flags.
enum class CardinalityMode : uint8_t { kEnforce, kObserve, kOff };
std::string_view cardinalityModeName(CardinalityMode m);
struct CardinalitySettings {
  std::optional<CardinalityMode> mode;  // observe: decide and report, change nothing
  std::optional<uint64_t> limit;        // distinct values of a label before it is acted on
  std::optional<uint64_t> max_series;   // label sets per family before the adaptive drop
  std::optional<uint32_t> top_k;        // keep the K heaviest values, fold the rest into __other__
};

// What happens to a sensitive value (redact rules and the built-in detectors).
enum class RedactMethod { kHash, kMask, kDropLabel, kDropSeries };
std::string_view redactMethodName(RedactMethod m);

// The built-in sensitive-value detectors: on by default for every unprotected
// label value and for exemplar labels.
struct DetectorsConfig {
  pipeline::sanitize::DetectorMask enabled = pipeline::sanitize::kAllDetectors;
  RedactMethod action = RedactMethod::kHash;
  std::string mask = "{redacted}";
  bool exemplars = true;
};

using GaugeFn = pipeline::merge::GaugeFn;
enum class TypeHint { kCounter, kGauge };
std::string_view actionName(Action a);

// Matches a name exactly, by RE2 full match, or always.
class NameMatcher {
 public:
  NameMatcher() = default;
  static NameMatcher exact(std::string s);
  static NameMatcher regex(std::shared_ptr<const RE2> re);
  bool matches(std::string_view name) const;
  bool any() const { return !regex_ && exact_.empty(); }
  std::string describe() const;

 private:
  std::string exact_;
  std::shared_ptr<const RE2> regex_;
};

struct Rule {
  std::string name;   // optional, for logs and stats; defaults to "file:line"
  std::string where;  // "file:line" of the rule
  Action action = Action::kKeep;
  NameMatcher metric;                     // on the metric family name
  std::vector<std::string> labels;        // keep / drop_label: exact label names
  std::shared_ptr<const RE2> label_regex; // keep / drop_label: label names (full match)
  // replace
  std::string source_label;
  std::string target_label;
  std::shared_ptr<const RE2> value_regex;  // full match on the source value
  std::string replacement;                 // $1, ${name}; an empty result removes the label
  // redact
  RedactMethod method = RedactMethod::kHash;
  std::string mask = "{redacted}";
  // normalize
  pipeline::normalize::Normalizer normalizer = pipeline::normalize::Normalizer::kAuto;
  // drop_label / replace / normalize / redact (mask, drop_label): how merged series are aggregated
  pipeline::merge::Options merge;  // how merged gauges combine; counters always sum increases
  bool has_merge = false;          // `merge:` given: the first such matching rule decides a family's options
  std::optional<TypeHint> type;  // fallback when metadata and naming say nothing
  CardinalitySettings cardinality;  // action cardinality; labels/label_regex scope limit and top_k

  bool namesLabel(std::string_view label) const;  // labels / label_regex
};

// A `$1`, `${1}` or `${name}` reference in a replacement, as the loader
// validates it and the relabel stage expands it (one scanner for both).
struct GroupRef {
  size_t end = 0;          // index just past the reference
  std::string_view text;   // the number or name
  int group = -1;          // the group number; -1 for an unknown name; INT32_MAX for an absurd number
};
// `rep[i]` must be '$'. nullopt: not a reference (the '$' is literal).
std::optional<GroupRef> scanGroupRef(std::string_view rep, size_t i, const RE2& re);

uint64_t nextRuleSetInstance();

struct RuleSet {
  // Unique per constructed rule set (per-thread memos key on it, not on an address).
  uint64_t instance = nextRuleSetInstance();
  std::vector<Rule> rules;
  std::vector<std::string> protected_labels;  // built-ins plus configured, sorted
  std::vector<std::string> files;
  DetectorsConfig detectors;
  bool isProtected(std::string_view label) const;
  bool hasAction(Action a) const;
};

inline const std::vector<std::string>& builtinProtectedLabels() {
  static const std::vector<std::string> k = {"__name__", "instance", "job", "le", "quantile"};
  return k;
}

}  // namespace cardinal::rules
