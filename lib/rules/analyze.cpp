#include "rules/analyze.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <sstream>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/flags.h"
#include "pipeline/cardinality/cardinality_state.h"
#include "security/auth.h"
#include "security/tls.h"
#include "upstream/http_get.h"
#include "upstream/url.h"

namespace cardinal::rules::analyze {

namespace {

using json = nlohmann::json;
using pipeline::cardinality::ValueShape;
using pipeline::normalize::Normalizer;

constexpr size_t kShapeCount = pipeline::cardinality::kValueShapeCount;
constexpr size_t kMinTemplateSample = 8;  // fewer sampled values say nothing about templates
constexpr size_t kMaxBodyBytes = size_t{64} << 20;

bool isProtected(std::string_view label) {
  return label == "__name__" || label == "le" || label == "quantile" || label == "job" || label == "instance";
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Numbers of five digits or more (pids, order numbers); shorter ones are enumerations (codes,
// ports, shard numbers) however many there are.
bool isBigNumber(std::string_view v) {
  size_t digits = 0;
  for (char c : v) digits += c >= '0' && c <= '9';
  return digits >= 5;
}

std::string fmtCount(uint64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string fmtRatio(double v) {
  std::ostringstream out;
  out.precision(2);
  out << v;
  return out.str();
}

std::string percent(size_t part, size_t total) {
  return std::to_string(total ? static_cast<int>(std::lround(100.0 * static_cast<double>(part) / total)) : 0) + "%";
}

// "uuid 100%" or "path 70%, text 30%": the two largest shapes of the sample.
std::string shapeSummary(const LabelFinding& f) {
  std::vector<std::pair<size_t, size_t>> order;  // (count, shape)
  for (size_t i = 0; i < kShapeCount; ++i)
    if (f.shapes[i] > 0) order.emplace_back(f.shapes[i], i);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string out;
  for (size_t k = 0; k < order.size() && k < 2; ++k) {
    if (k) out += ", ";
    out += std::string(pipeline::cardinality::shapeName(static_cast<ValueShape>(order[k].second))) + " " +
           percent(order[k].first, f.sampled);
  }
  return out;
}

std::string distinctText(const LabelFinding& f) {
  return (f.distinct_capped ? "at least " : "") + fmtCount(f.distinct) + " distinct value" + (f.distinct == 1 ? "" : "s");
}

// A template of placeholders and separators only ("{id}", "/{id}/{num}") keeps nothing.
bool placeholdersOnly(std::string_view t) {
  bool in_placeholder = false;
  for (char c : t) {
    if (c == '{') in_placeholder = true;
    else if (c == '}') in_placeholder = false;
    else if (!in_placeholder && std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

struct Templating {
  Normalizer normalizer = Normalizer::kAuto;
  size_t templates = 0;
  bool placeholders_only = false;
};

// The normalizer that collapses the sample best, as the engine's templating does. Among
// url_path, file_path and sql, ties go to the one `auto` would pick for more of the values (by
// their shape: SQL is sql, a /tmp/... path a file path, /users/... a URL path); `auto` itself is
// proposed only when none of them applies. Fails when the best keeps more than half of the
// sampled values distinct.
std::optional<Templating> bestTemplating(const std::vector<std::string>& sample) {
  namespace nz = pipeline::normalize;
  if (sample.size() < kMinTemplateSample) return std::nullopt;
  std::map<Normalizer, size_t> auto_picks;
  for (const auto& v : sample) {
    const nz::Shape shape = nz::classify(v);
    if (shape == nz::Shape::kSql) ++auto_picks[Normalizer::kSql];
    else if (shape == nz::Shape::kPath) ++auto_picks[nz::isFilePath(v) ? Normalizer::kFilePath : Normalizer::kUrlPath];
  }
  std::optional<Templating> best;
  std::string buf;
  auto consider = [&](Normalizer n) {
    std::unordered_set<std::string> templates;
    size_t changed = 0;
    bool placeholders = true;
    for (const auto& v : sample) {
      const bool did = nz::normalize(n, v, buf);
      const std::string& out = did ? buf : v;
      changed += did;
      placeholders = placeholders && did && placeholdersOnly(out);
      templates.insert(out);
    }
    if (changed * 2 < sample.size()) return;  // this normalizer does not apply to these values
    if (!best || templates.size() < best->templates ||
        (templates.size() == best->templates && auto_picks[n] > auto_picks[best->normalizer]))
      best = Templating{n, templates.size(), placeholders};
  };
  for (Normalizer n : {Normalizer::kUrlPath, Normalizer::kFilePath, Normalizer::kSql}) consider(n);
  if (!best || best->templates * 2 > sample.size()) {
    best.reset();
    consider(Normalizer::kAuto);
  }
  if (!best || best->templates * 2 > sample.size()) return std::nullopt;
  return best;
}

core::Result<json> parseSuccess(const std::string& body, const std::string& what) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return core::Error{what + ": the answer is not JSON"};
  if (doc.value("status", "") != "success")
    return core::Error{what + ": " + (doc.contains("error") ? doc["error"].dump() : std::string("status is not success"))};
  if (!doc.contains("data")) return core::Error{what + ": the answer has no data"};
  return doc["data"];
}

std::vector<NameCount> nameCounts(const json& data, const char* key) {
  std::vector<NameCount> out;
  if (!data.contains(key) || !data[key].is_array()) return out;
  for (const auto& e : data[key]) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string()) continue;
    uint64_t v = 0;
    if (e.contains("value") && e["value"].is_number()) v = e["value"].get<uint64_t>();
    out.push_back({e["name"].get<std::string>(), v});
  }
  return out;
}

std::string matchParams(const FamilyFinding& f) {
  std::string q;
  for (const auto& m : f.metrics) {
    q += q.empty() ? "match[]=" : "&match[]=";
    q += upstream::queryEscape("{__name__=\"" + m + "\"}");
  }
  return q;
}

std::string yamlQuoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Label names are plain in a flow sequence unless they hold anything but [A-Za-z0-9_].
std::string yamlLabel(std::string_view s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
  return plain ? std::string(s) : yamlQuoted(s);
}

std::string nowRfc3339() {
  return pipeline::cardinality::formatTime(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

}  // namespace

std::string_view proposalName(Proposal p) {
  switch (p) {
    case Proposal::kKeep: return "keep";
    case Proposal::kDropLabel: return "drop_label";
    case Proposal::kNormalize: return "normalize";
    case Proposal::kTopK: return "top_k";
    case Proposal::kLimit: return "limit";
  }
  return "keep";
}

LabelFinding classifyLabel(std::string label, const std::vector<std::string>& sample, size_t distinct,
                           bool distinct_capped, uint64_t family_series, const Config& cfg) {
  LabelFinding f;
  f.label = std::move(label);
  f.distinct = distinct;
  f.distinct_capped = distinct_capped;
  f.sampled = sample.size();
  size_t big_numbers = 0;
  for (const auto& v : sample) {
    const ValueShape s = pipeline::cardinality::classifyValue(v);
    ++f.shapes[static_cast<size_t>(s)];
    if (s == ValueShape::kNumber && isBigNumber(v)) ++big_numbers;
  }
  f.unique_ratio = family_series == 0 ? 1.0
                                      : std::min(1.0, static_cast<double>(distinct) / static_cast<double>(family_series));
  auto share = [&](ValueShape s) { return f.shapes[static_cast<size_t>(s)]; };
  size_t id = share(ValueShape::kUuid) + share(ValueShape::kHex) + share(ValueShape::kToken) +
              share(ValueShape::kTimestamp) + share(ValueShape::kEmail) + share(ValueShape::kIp);
  if (f.unique_ratio > 0.5) id += big_numbers;
  const size_t n = sample.size();
  if (n > 0 && id * 2 >= n) f.shape_class = "identifier";
  else if (n > 0 && (share(ValueShape::kPath) + share(ValueShape::kText)) * 2 >= n) f.shape_class = "templatable";
  else f.shape_class = "enumerated";

  const std::string seen = distinctText(f) + (n ? " (" + shapeSummary(f) + ", unique ratio " + fmtRatio(f.unique_ratio) + ")" : "");
  if (distinct <= cfg.identifier_limit) {
    f.reason = seen + ": within the identifier limit " + std::to_string(cfg.identifier_limit);
    return f;
  }
  if (f.shape_class == "identifier") {
    f.proposal = Proposal::kDropLabel;
    f.reason = seen + " > identifier limit " + std::to_string(cfg.identifier_limit);
    return f;
  }
  if (f.shape_class == "templatable") {
    if (auto t = bestTemplating(sample)) {
      const std::string collapses = seen + "; a sample of " + std::to_string(n) + " collapses to " +
                                    std::to_string(t->templates) + " template" + (t->templates == 1 ? "" : "s") +
                                    " with normalizer " + std::string(pipeline::normalize::normalizerName(t->normalizer));
      if (t->placeholders_only) {
        f.proposal = Proposal::kDropLabel;
        f.reason = collapses + " made of placeholders only: the values are identifiers";
      } else {
        f.proposal = Proposal::kNormalize;
        f.normalizer = t->normalizer;
        f.templates = t->templates;
        f.reason = collapses;
      }
      return f;
    }
    if (distinct > cfg.enum_limit) {
      f.proposal = Proposal::kTopK;
      f.limit = cfg.top_k;
      f.reason = seen + " that no normalizer collapses, > enumerated limit " + std::to_string(cfg.enum_limit) +
                 ": keep the " + std::to_string(cfg.top_k) + " heaviest";
      return f;
    }
    f.reason = seen + " that no normalizer collapses, within the enumerated limit " + std::to_string(cfg.enum_limit);
    return f;
  }
  if (distinct > cfg.enum_limit) {
    f.proposal = Proposal::kTopK;
    f.limit = cfg.top_k;
    f.reason = seen + " > enumerated limit " + std::to_string(cfg.enum_limit) + ": keep the " +
               std::to_string(cfg.top_k) + " heaviest";
    return f;
  }
  if (f.unique_ratio > 0.5) {
    f.proposal = Proposal::kLimit;
    f.limit = cfg.identifier_limit;
    f.reason = seen + ": word-like but one per series, like an identifier; limit it at " +
               std::to_string(cfg.identifier_limit) + " instead of the enumerated limit " + std::to_string(cfg.enum_limit);
    return f;
  }
  f.reason = seen + ": enumerated values within the enumerated limit " + std::to_string(cfg.enum_limit);
  return f;
}

std::string familyOf(std::string_view metric, const std::set<std::string, std::less<>>& names) {
  if (endsWith(metric, "_bucket") && metric.size() > 7) return std::string(metric.substr(0, metric.size() - 7));
  for (std::string_view suffix : {"_sum", "_count", "_created"}) {
    if (!endsWith(metric, suffix) || metric.size() == suffix.size()) continue;
    const std::string base(metric.substr(0, metric.size() - suffix.size()));
    if (names.count(base + "_bucket")) return base;
  }
  return std::string(metric);
}

std::vector<std::string> spreadSample(const std::vector<std::string>& values, size_t n) {
  if (values.size() <= n) return values;
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(values[i * values.size() / n]);
  return out;
}

core::Result<Report> analyze(const Fetch& fetch, const Config& cfg) {
  Report report;
  report.generated_at = nowRfc3339();
  auto body = fetch("/api/v1/status/tsdb?limit=" + std::to_string(std::max<size_t>(cfg.top, 10)));
  if (!body) return core::Error{body.error()};
  auto tsdb = parseSuccess(*body, "/api/v1/status/tsdb");
  if (!tsdb) return core::Error{tsdb.error()};
  const json& data = *tsdb;
  if (data.contains("headStats") && data["headStats"].is_object() && data["headStats"].contains("numSeries") &&
      data["headStats"]["numSeries"].is_number())
    report.head_series = data["headStats"]["numSeries"].get<uint64_t>();
  report.label_value_counts = nameCounts(data, "labelValueCountByLabelName");
  const auto metrics = nameCounts(data, "seriesCountByMetricName");

  // Histogram and summary parts are one family, as in rules.
  std::set<std::string, std::less<>> names;
  for (const auto& m : metrics) names.insert(m.name);
  std::map<std::string, FamilyFinding> by_family;
  for (const auto& m : metrics) {
    FamilyFinding& f = by_family[familyOf(m.name, names)];
    f.metrics.push_back(m.name);
    f.series += m.count;
  }
  std::vector<FamilyFinding> families;
  for (auto& [name, f] : by_family) {
    f.family = name;
    families.push_back(std::move(f));
  }
  std::sort(families.begin(), families.end(), [](const FamilyFinding& a, const FamilyFinding& b) {
    return a.series != b.series ? a.series > b.series : a.family < b.family;
  });
  if (families.size() > cfg.top) families.resize(cfg.top);
  if (metrics.size() <= 10 && cfg.top > 10 && families.size() < cfg.top)
    report.warnings.push_back("this Prometheus lists only its 10 largest metric names in /api/v1/status/tsdb "
                              "(newer versions honour the limit parameter)");

  for (auto& f : families) {
    const std::string match = matchParams(f);
    auto labels_body = fetch("/api/v1/labels?" + match);
    if (!labels_body) return core::Error{labels_body.error()};
    auto label_names = parseSuccess(*labels_body, "/api/v1/labels");
    if (!label_names) return core::Error{label_names.error()};
    size_t examined = 0;
    for (const auto& ln : *label_names) {
      if (!ln.is_string() || isProtected(ln.get<std::string>())) continue;
      const std::string label = ln.get<std::string>();
      if (examined++ == cfg.max_labels) {
        report.warnings.push_back(f.family + ": only the first " + std::to_string(cfg.max_labels) +
                                  " labels were examined");
        break;
      }
      auto values_body = fetch("/api/v1/label/" + upstream::queryEscape(label) + "/values?" + match + "&limit=" + std::to_string(cfg.max_values));
      core::Result<json> values = values_body ? parseSuccess(*values_body, "/api/v1/label/" + label + "/values")
                                              : core::Result<json>(core::Error{values_body.error()});
      if (!values || !values->is_array()) {
        LabelFinding lf;
        lf.label = label;
        lf.error = values ? "the answer is not a list" : values.error();
        lf.reason = "values not read: " + lf.error;
        f.labels.push_back(std::move(lf));
        continue;
      }
      std::vector<std::string> all;
      all.reserve(values->size());
      for (const auto& v : *values)
        if (v.is_string()) all.push_back(v.get<std::string>());
      const bool capped = all.size() >= cfg.max_values;
      if (all.size() > cfg.max_values) all.resize(cfg.max_values);
      f.labels.push_back(classifyLabel(label, spreadSample(all, cfg.sample), all.size(), capped, f.series, cfg));
    }
    std::sort(f.labels.begin(), f.labels.end(), [](const LabelFinding& a, const LabelFinding& b) {
      return a.distinct != b.distinct ? a.distinct > b.distinct : a.label < b.label;
    });
    // A family over the series limit that no proposal shrinks: keep the heaviest values of its
    // largest label, as the engine would drop that label first.
    const bool any = std::any_of(f.labels.begin(), f.labels.end(),
                                 [](const LabelFinding& l) { return l.proposal != Proposal::kKeep; });
    if (!any && f.series > cfg.max_series && !f.labels.empty() && f.labels.front().distinct > 1 &&
        f.labels.front().error.empty()) {
      LabelFinding& l = f.labels.front();
      l.proposal = Proposal::kTopK;
      l.limit = cfg.top_k;
      l.reason = "the family has " + fmtCount(f.series) + " series > series limit " + fmtCount(cfg.max_series) +
                 " and this is its largest label (" + distinctText(l) + "): keep the " + std::to_string(cfg.top_k) +
                 " heaviest";
    }
  }
  report.families = std::move(families);
  return report;
}

std::string renderYaml(const Report& report) {
  std::ostringstream out;
  out << "# Rules proposed by `cardinal analyze` for the Prometheus at " << report.source << "\n"
      << "# (" << report.generated_at << "; " << fmtCount(report.head_series) << " head series; the "
      << report.families.size() << " largest metric families examined). Label values were sampled and\n"
      << "# classified, never printed. Review, then check with: cardinal check rules FILE\n";
  for (const auto& w : report.warnings) out << "# warning: " << w << "\n";
  std::ostringstream rules;
  std::vector<std::string> kept;
  for (const auto& f : report.families) {
    std::vector<const LabelFinding*> drop, topk, limit;
    std::map<std::string, std::vector<const LabelFinding*>> normalize;  // by normalizer name
    for (const auto& l : f.labels) {
      switch (l.proposal) {
        case Proposal::kDropLabel: drop.push_back(&l); break;
        case Proposal::kNormalize:
          normalize[std::string(pipeline::normalize::normalizerName(*l.normalizer))].push_back(&l);
          break;
        case Proposal::kTopK: topk.push_back(&l); break;
        case Proposal::kLimit: limit.push_back(&l); break;
        case Proposal::kKeep: break;
      }
    }
    if (drop.empty() && normalize.empty() && topk.empty() && limit.empty()) {
      kept.push_back(f.family + " (" + fmtCount(f.series) + " series)");
      continue;
    }
    rules << "\n  # " << f.family << ": " << fmtCount(f.series) << " series\n";
    auto evidence = [&](const std::vector<const LabelFinding*>& ls) {
      for (const auto* l : ls) rules << "  #   " << l->label << ": " << l->reason << "\n";
    };
    auto names = [](const std::vector<const LabelFinding*>& ls, bool yaml) {
      std::string s;
      for (size_t i = 0; i < ls.size(); ++i) s += (i ? ", " : "") + (yaml ? yamlLabel(ls[i]->label) : ls[i]->label);
      return s;
    };
    auto labelList = [&](const std::vector<const LabelFinding*>& ls) { return "[" + names(ls, true) + "]"; };
    auto head = [&](const std::string& what, const char* action) {
      rules << "  - name: " << yamlQuoted(f.family + ": " + what) << "\n"
            << "    match: {metric: " << yamlQuoted(f.family) << "}\n"
            << "    action: " << action << "\n";
    };
    if (!drop.empty()) {
      evidence(drop);
      head(drop.size() == 1 ? "drop identifier label " + drop[0]->label : "drop identifier labels", "drop_label");
      rules << "    labels: " << labelList(drop) << "\n";
      // Latency and ratio gauges keep their average across the merged series (as the defaults
      // do); a histogram's parts are counters, summed whatever the gauge function.
      const bool histogram = std::any_of(f.metrics.begin(), f.metrics.end(),
                                         [](const std::string& m) { return endsWith(m, "_bucket"); });
      if (!histogram && (endsWith(f.family, "_seconds") || endsWith(f.family, "_ratio")))
        rules << "    merge: {gauge: avg}\n";
    }
    for (const auto& [normalizer, ls] : normalize) {
      evidence(ls);
      head("normalize " + names(ls, false) + " with " + normalizer, "normalize");
      rules << "    labels: " << labelList(ls) << "\n    normalizer: " << normalizer << "\n";
    }
    for (const auto* l : topk) {
      evidence({l});
      head("top " + std::to_string(l->limit) + " values of " + l->label, "cardinality");
      rules << "    labels: " << labelList({l}) << "\n    top_k: " << l->limit << "\n";
    }
    for (const auto* l : limit) {
      evidence({l});
      head("limit " + l->label, "cardinality");
      rules << "    labels: " << labelList({l}) << "\n    limit: " << l->limit << "\n";
    }
  }
  const std::string body = rules.str();
  out << (body.empty() ? "rules: []\n" : "rules:" + body);
  if (!kept.empty()) {
    out << "\n# No rule proposed (every label within its limit):\n";
    for (const auto& k : kept) out << "#   " << k << "\n";
  }
  return out.str();
}

std::string renderText(const Report& report) {
  std::ostringstream out;
  out << "Prometheus " << report.source << ": " << fmtCount(report.head_series) << " head series ("
      << report.generated_at << ")\n";
  for (const auto& w : report.warnings) out << "warning: " << w << "\n";
  out << "\n";
  auto pad = [](std::string s, size_t w, bool right = false) {
    if (s.size() >= w) return s + " ";
    return right ? std::string(w - s.size(), ' ') + s + " " : s + std::string(w - s.size(), ' ') + " ";
  };
  out << pad("FAMILY / LABEL", 44) << pad("SERIES", 10, true) << pad("DISTINCT", 10, true) << pad("SHAPE", 26)
      << "PROPOSAL\n";
  for (const auto& f : report.families) {
    out << pad(f.family, 44) << pad(fmtCount(f.series), 10, true) << "\n";
    for (const auto& l : f.labels) {
      std::string proposal(proposalName(l.proposal));
      if (l.proposal == Proposal::kNormalize) proposal += " (" + std::string(pipeline::normalize::normalizerName(*l.normalizer)) + ")";
      if (l.proposal == Proposal::kTopK || l.proposal == Proposal::kLimit) proposal += " " + std::to_string(l.limit);
      if (!l.error.empty()) proposal = "not read";
      out << pad("  " + l.label, 44) << pad("", 10) << pad((l.distinct_capped ? ">=" : "") + fmtCount(l.distinct), 10, true)
          << pad(shapeSummary(l), 26) << proposal << "\n";
    }
  }
  out << "\nReasons:\n";
  for (const auto& f : report.families)
    for (const auto& l : f.labels)
      if (l.proposal != Proposal::kKeep || !l.error.empty())
        out << "  " << f.family << "{" << l.label << "}: " << proposalName(l.proposal) << ": " << l.reason << "\n";
  if (!report.label_value_counts.empty()) {
    out << "\nLabel names with the most values (all metrics):";
    for (size_t i = 0; i < report.label_value_counts.size() && i < 10; ++i)
      out << (i ? ", " : " ") << report.label_value_counts[i].name << " " << fmtCount(report.label_value_counts[i].count);
    out << "\n";
  }
  return out.str();
}

int analyzeCommand(int argc, const char* const* argv, int first, std::ostream& out, std::ostream& err) {
  Config cfg;
  std::string url_text, format = "yaml";
  std::chrono::milliseconds timeout{30'000};
  bool help = false;
  core::FlagSet flags("cardinal analyze");
  flags.addString("prometheus.url", &url_text, "Prometheus to read, e.g. http://prometheus:9090 or https://... (required)");
  flags.addCount("top", &cfg.top, "Largest metric families to examine");
  flags.addString("format", &format, "Output: yaml (a rule file) or text (a table with the reasons)");
  flags.addCount("sample", &cfg.sample, "Values classified per label (spread over its sorted values)");
  flags.addCount("max-values", &cfg.max_values, "Values read per label (sent as the limit parameter, which newer Prometheus versions honour)");
  flags.addCount("identifier-limit", &cfg.identifier_limit, "As --cardinality.identifier-limit");
  flags.addCount("enum-limit", &cfg.enum_limit, "As --cardinality.enum-limit");
  flags.addCount("max-series", &cfg.max_series, "As --cardinality.max-series");
  flags.addCount("top-k", &cfg.top_k, "K of proposed top_k rules");
  flags.addDuration("timeout", &timeout, "Timeout of each request to Prometheus");
  // An https:// Prometheus (e.g. behind --web.config.file), and its credentials: as the proxy's
  // --upstream.* flags of the same names.
  security::ClientTlsFiles tls_files;
  std::string server_name, token_file, basic_user, password_file;
  flags.addString("prometheus.tls-ca-file", &tls_files.ca_file, "PEM CA bundle to verify an https:// Prometheus (default: the system store)");
  flags.addString("prometheus.tls-cert-file", &tls_files.cert_file, "PEM client certificate presented to Prometheus (with --prometheus.tls-key-file)");
  flags.addString("prometheus.tls-key-file", &tls_files.key_file, "PEM private key of --prometheus.tls-cert-file");
  flags.addString("prometheus.tls-server-name", &server_name, "Name verified in Prometheus' certificate and sent as SNI (default: the URL's host)");
  flags.addBool("prometheus.tls-insecure-skip-verify", &tls_files.insecure_skip_verify, "Do not verify Prometheus' certificate (insecure)");
  flags.addString("prometheus.bearer-token-file", &token_file, "File holding a bearer token sent to Prometheus");
  flags.addString("prometheus.basic-auth-user", &basic_user, "Basic-auth user for Prometheus (with --prometheus.basic-auth-password-file)");
  flags.addString("prometheus.basic-auth-password-file", &password_file, "File holding the basic-auth password for Prometheus");
  flags.addBool("help", &help, "Show this help and exit");
  std::vector<std::string> positional;
  if (auto st = flags.parse(argc, argv, first, positional); !st) {
    err << "cardinal analyze: " << st.error() << "\n";
    return 2;
  }
  if (help) {
    out << "Reads a Prometheus' TSDB status and label values and proposes rules for its largest metric "
           "families.\n\n"
        << flags.usage();
    return 0;
  }
  if (!positional.empty()) {
    err << "cardinal analyze: unexpected argument \"" << positional[0] << "\" (see --help)\n";
    return 2;
  }
  if (format != "yaml" && format != "text") {
    err << "cardinal analyze: --format must be yaml or text, not \"" << format << "\"\n";
    return 2;
  }
  if (url_text.empty()) {
    err << "cardinal analyze: --prometheus.url is required (e.g. http://127.0.0.1:9090)\n";
    return 2;
  }
  if (cfg.top == 0 || cfg.sample == 0 || cfg.max_values == 0) {
    err << "cardinal analyze: --top, --sample and --max-values must be at least 1\n";
    return 2;
  }
  auto url = upstream::parseUrl(url_text);
  if (!url) {
    err << "cardinal analyze: --prometheus.url: " << url.error() << "\n";
    return 2;
  }
  upstream::HttpGetOptions get_options;
  if (url->scheme == "https") {
    auto ctx = security::makeClientContext(tls_files);
    if (!ctx) {
      err << "cardinal analyze: --prometheus.tls-*: " << ctx.error() << "\n";
      return 2;
    }
    get_options.tls = *ctx;
    get_options.server_name = server_name;
    get_options.verify = !tls_files.insecure_skip_verify;
  } else if (!tls_files.ca_file.empty() || !tls_files.cert_file.empty() || !tls_files.key_file.empty() ||
             !server_name.empty() || tls_files.insecure_skip_verify) {
    err << "cardinal analyze: --prometheus.tls-* flags need an https:// --prometheus.url\n";
    return 2;
  }
  security::UpstreamAuth auth(token_file, basic_user, password_file);
  if (auto st = auth.validate(); !st) {
    err << "cardinal analyze: " << st.error() << "\n";
    return 2;
  }
  if (auth.enabled()) {
    if (auto st = auth.reload(); !st) {
      err << "cardinal analyze: " << st.error() << "\n";
      return 2;
    }
    get_options.authorization = *auth.header();
  }
  std::string prefix = url->target.substr(0, url->target.find('?'));  // a Prometheus under a path prefix
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  Fetch fetch = [&](const std::string& target) -> core::Result<std::string> {
    auto res = upstream::httpGet(*url, prefix + target, timeout, kMaxBodyBytes, get_options);
    if (!res) return core::Error{res.error()};
    if (res->status != 200) {
      std::string detail = res->body.substr(0, 300);
      json doc = json::parse(res->body, nullptr, false);
      if (!doc.is_discarded() && doc.is_object() && doc.contains("error") && doc["error"].is_string())
        detail = doc["error"].get<std::string>();
      return core::Error{"GET " + prefix + target + ": HTTP " + std::to_string(res->status) + ": " + detail};
    }
    return std::move(res->body);
  };
  auto report = analyze(fetch, cfg);
  if (!report) {
    err << "cardinal analyze: " << report.error() << "\n";
    return 1;
  }
  report->source = url_text;
  out << (format == "yaml" ? renderYaml(*report) : renderText(*report));
  return 0;
}

}  // namespace cardinal::rules::analyze
