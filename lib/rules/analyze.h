#pragma once
// `cardinal analyze`: reads what a Prometheus already stores and proposes rules for its worst
// metric families, in the rule-file schema (docs/rules.md), ready for `cardinal check rules`.
//
// Steps: /api/v1/status/tsdb gives the families with the most series (seriesCountByMetricName,
// histogram parts grouped into their family) and the label names with the most values; for each
// of the `top` largest families, /api/v1/labels?match[]= lists its labels and
// /api/v1/label/<name>/values?match[]= gives each label's distinct values in that family (with
// limit=, which newer Prometheus versions honour; against older ones, such as 2.42, the answer is
// bounded by a 64 MiB body cap instead). A bounded,
// evenly spread sample of them is classified like the cardinality engine does at run time:
// value shapes (pipeline/cardinality/sketch/value_shape.h), the unique ratio (distinct values
// per series of the family), and templating with the normalizers
// (pipeline/normalize/normalizers.h). Proposals:
//   drop_label   identifier-shaped labels (uuid, hex, tokens, timestamps, emails, IPs, numbers
//                of 5+ digits that are one per series) past the identifier limit, and paths or
//                text whose templates are placeholders only;
//   normalize    paths and text that a normalizer collapses to at most half the sampled values,
//                with that normalizer (url_path, file_path, sql; auto if none of those fits);
//   cardinality  top_k for word-like labels past the enumerated limit (and for the largest label
//                of a family over the series limit), limit for word-like labels that are one per
//                series (pod names, hostnames) past the identifier limit.
// Protected labels (__name__, le, quantile, job, instance) are never proposed.
//
// Label values are classified and counted, never printed or kept: they may be sensitive (the
// Prometheus may hold raw emails). The decisions are pure functions (classifyLabel, familyOf,
// render*) so they are unit-tested without a Prometheus; analyze() takes the HTTP GET as a
// function for the same reason.

#include <array>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "pipeline/cardinality/sketch/value_shape.h"
#include "pipeline/normalize/normalizers.h"

namespace cardinal::rules::analyze {

struct Config {
  size_t top = 10;                  // families examined, largest first
  size_t sample = 64;               // values per label that are classified
  size_t max_values = 10000;        // values asked for per label (`limit=`); more are ignored
  size_t max_labels = 32;           // labels examined per family
  size_t identifier_limit = 100;    // as --cardinality.identifier-limit
  size_t enum_limit = 2000;         // as --cardinality.enum-limit
  size_t max_series = 50000;        // as --cardinality.max-series
  size_t top_k = 50;                // K of a proposed top_k rule
};

enum class Proposal { kKeep, kDropLabel, kNormalize, kTopK, kLimit };
std::string_view proposalName(Proposal p);  // keep, drop_label, normalize, top_k, limit

struct LabelFinding {
  std::string label;
  size_t distinct = 0;          // distinct values in the family
  bool distinct_capped = false; // the value list was cut at Config::max_values: at least `distinct`
  size_t sampled = 0;
  std::array<size_t, pipeline::cardinality::kValueShapeCount> shapes{};  // sampled values by shape
  std::string shape_class;      // identifier, enumerated, templatable (as in the stats)
  double unique_ratio = 0;      // distinct values per series of the family, at most 1
  Proposal proposal = Proposal::kKeep;
  std::optional<pipeline::normalize::Normalizer> normalizer;  // kNormalize
  size_t templates = 0;         // kNormalize: distinct templates of the sample
  size_t limit = 0;             // kLimit: the proposed limit; kTopK: K
  std::string reason;           // counts and shapes, never a value
  std::string error;            // the values could not be read
};

struct FamilyFinding {
  std::string family;
  std::vector<std::string> metrics;  // names it has in the TSDB status (x_bucket, x_sum, ...)
  uint64_t series = 0;
  std::vector<LabelFinding> labels;  // by distinct values, largest first
};

struct NameCount {
  std::string name;
  uint64_t count = 0;
};

struct Report {
  std::string source;        // the Prometheus URL
  std::string generated_at;  // RFC 3339, UTC
  uint64_t head_series = 0;
  std::vector<FamilyFinding> families;
  std::vector<NameCount> label_value_counts;  // labelValueCountByLabelName, as Prometheus sent it
  std::vector<std::string> warnings;
};

// One label, from a sample of its values in one family. Pure.
LabelFinding classifyLabel(std::string label, const std::vector<std::string>& sample, size_t distinct,
                           bool distinct_capped, uint64_t family_series, const Config& cfg);

// The family a metric name belongs to: x_bucket -> x; x_sum, x_count, x_created -> x when
// x_bucket is among `names` (the seed's api_request_count stays itself). Pure.
std::string familyOf(std::string_view metric, const std::set<std::string, std::less<>>& names);

// Up to `n` values spread evenly over `values` (which Prometheus returns sorted). Pure.
std::vector<std::string> spreadSample(const std::vector<std::string>& values, size_t n);

// Answers the body of a 200 to GET `target` (path and query), or an error naming the target.
using Fetch = std::function<core::Result<std::string>(const std::string& target)>;

core::Result<Report> analyze(const Fetch& fetch, const Config& cfg);

// A rule file (YAML, docs/rules.md) with the evidence as comments; `rules: []` if nothing is
// proposed.
std::string renderYaml(const Report& report);
// A table for people: families, labels, distinct values, shapes, proposals and reasons.
std::string renderText(const Report& report);

// `cardinal analyze --prometheus.url=http://host:port [--top=10] [--format=yaml|text] ...`;
// argv[0..first) are the program and the command. Exit codes: 0, 1 (Prometheus unreadable),
// 2 (bad flags).
int analyzeCommand(int argc, const char* const* argv, int first, std::ostream& out, std::ostream& err);

}  // namespace cardinal::rules::analyze
