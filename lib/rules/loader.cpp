#include "rules/loader.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace cardinal::rules {
namespace {

using core::Error;

struct Ctx {
  std::string file;
  std::string at(const YAML::Node& n) const { return file + ":" + std::to_string(n.Mark().line + 1) + ": "; }
};

// Throws nothing: every accessor checks the node type first.
core::Result<std::string> scalar(const Ctx& c, const YAML::Node& n, std::string_view key) {
  if (!n.IsScalar()) return Error{c.at(n) + "\"" + std::string(key) + "\" must be a string"};
  return n.Scalar();
}

core::Result<std::vector<std::string>> stringList(const Ctx& c, const YAML::Node& n, std::string_view key) {
  std::vector<std::string> out;
  if (n.IsScalar()) {
    out.push_back(n.Scalar());
    return out;
  }
  if (!n.IsSequence()) return Error{c.at(n) + "\"" + std::string(key) + "\" must be a list of strings"};
  for (const auto& item : n) {
    if (!item.IsScalar()) return Error{c.at(item) + "\"" + std::string(key) + "\" must be a list of strings"};
    out.push_back(item.Scalar());
  }
  return out;
}

core::Result<std::shared_ptr<const RE2>> compile(const Ctx& c, const YAML::Node& n, const std::string& pattern) {
  RE2::Options opts;
  opts.set_log_errors(false);
  auto re = std::make_shared<RE2>(pattern, opts);
  if (!re->ok()) return Error{c.at(n) + "invalid regex \"" + pattern + "\": " + re->error()};
  return std::shared_ptr<const RE2>(std::move(re));
}

bool validLabelName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char ch = s[i];
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || (i > 0 && ch >= '0' && ch <= '9');
    if (!ok) return false;
  }
  return true;
}

core::Result<GaugeFn> gaugeFn(const Ctx& c, const YAML::Node& n) {
  static const std::pair<const char*, GaugeFn> names[] = {
      {"sum", GaugeFn::kSum},     {"avg", GaugeFn::kAvg}, {"min", GaugeFn::kMin},
      {"max", GaugeFn::kMax},     {"count", GaugeFn::kCount}, {"last", GaugeFn::kLast}};
  if (n.IsScalar())
    for (const auto& [name, fn] : names)
      if (n.Scalar() == name) return fn;
  return Error{c.at(n) + "\"gauge\" must be one of sum, avg, min, max, count, last"};
}

core::Result<RedactMethod> redactMethod(const Ctx& c, const YAML::Node& n) {
  std::string m = n.IsScalar() ? n.Scalar() : "";
  if (m == "hash") return RedactMethod::kHash;
  if (m == "mask") return RedactMethod::kMask;
  if (m == "drop_label") return RedactMethod::kDropLabel;
  if (m == "drop_series") return RedactMethod::kDropSeries;
  return Error{c.at(n) + "redaction method must be hash, mask, drop_label or drop_series"};
}

core::Status checkKeys(const Ctx& c, const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                       std::string_view what) {
  for (const auto& kv : map) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return Error{c.at(kv.first) + "unknown key \"" + key + "\" in " + std::string(what) + " (allowed: " + list + ")"};
    }
  }
  return core::Status::Ok();
}

core::Status parseMerge(const Ctx& c, const YAML::Node& n, Rule& r) {
  if (!n.IsMap()) return Error{c.at(n) + "\"merge\" must be a map"};
  if (auto st = checkKeys(c, n, {"gauge", "quantiles"}, "merge"); !st) return st;
  if (n["gauge"]) {
    auto fn = gaugeFn(c, n["gauge"]);
    if (!fn) return Error{fn.error()};
    r.merge.gauge = *fn;
  }
  if (const auto& q = n["quantiles"]) {
    if (!q.IsSequence()) return Error{c.at(q) + "\"quantiles\" must be a list of numbers in [0, 1]"};
    for (const auto& item : q) {
      double v = -1;
      try {
        v = item.as<double>();
      } catch (const YAML::Exception&) {
      }
      if (!(v >= 0 && v <= 1)) return Error{c.at(item) + "quantile must be a number in [0, 1]"};
      r.merge.quantiles.push_back(v);
    }
  }
  return core::Status::Ok();
}

core::Result<uint64_t> positiveInteger(const Ctx& c, const YAML::Node& n, std::string_view key) {
  const std::string text = n.IsScalar() ? n.Scalar() : "";
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v == 0)
    return Error{c.at(n) + "\"" + std::string(key) + "\" must be a positive integer"};
  return v;
}

// mode, limit, max_series, top_k: the cardinality action's own keys.
core::Status parseCardinality(const Ctx& c, const YAML::Node& n, Rule& r) {
  for (const char* k : {"mode", "limit", "max_series", "top_k"})
    if (n[k] && r.action != Action::kCardinality)
      return Error{c.at(n[k]) + "\"" + std::string(k) + "\" applies to cardinality only"};
  if (r.action != Action::kCardinality) return core::Status::Ok();
  auto& cs = r.cardinality;
  if (n["mode"]) {
    std::string m = n["mode"].IsScalar() ? n["mode"].Scalar() : "";
    if (m == "enforce") cs.mode = CardinalityMode::kEnforce;
    else if (m == "observe") cs.mode = CardinalityMode::kObserve;
    else if (m == "off") cs.mode = CardinalityMode::kOff;
    else return Error{c.at(n["mode"]) + "\"mode\" must be enforce, observe or off"};
  }
  for (auto [key, dst] : {std::pair{"limit", &cs.limit}, std::pair{"max_series", &cs.max_series}}) {
    if (!n[key]) continue;
    auto v = positiveInteger(c, n[key], key);
    if (!v) return Error{v.error()};
    *dst = *v;
  }
  if (n["top_k"]) {
    auto v = positiveInteger(c, n["top_k"], "top_k");
    if (!v) return Error{v.error()};
    if (*v > 1000) return Error{c.at(n["top_k"]) + "\"top_k\" must be at most 1000"};
    cs.top_k = static_cast<uint32_t>(*v);
  }
  if (!cs.mode && !cs.limit && !cs.max_series && !cs.top_k && !n["merge"])
    return Error{c.at(n) + "cardinality needs at least one of mode, limit, max_series, top_k, merge"};
  return core::Status::Ok();
}

core::Result<Rule> parseRule(const Ctx& c, const YAML::Node& n, size_t index, const std::set<std::string>& protect) {
  if (!n.IsMap()) return Error{c.at(n) + "a rule must be a map"};
  Rule r;
  r.where = c.file + ":" + std::to_string(n.Mark().line + 1);
  if (auto st = checkKeys(c, n,
                          {"name", "match", "action", "labels", "label_regex", "source_label", "target_label",
                           "regex", "replacement", "merge", "type", "method", "mask", "normalizer", "mode", "limit",
                           "max_series", "top_k"},
                          "rule");
      !st)
    return Error{st.error()};
  if (n["name"]) {
    auto s = scalar(c, n["name"], "name");
    if (!s) return Error{s.error()};
    r.name = *s;
  } else {
    r.name = r.where;
  }
  const YAML::Node& action = n["action"];
  if (!action) return Error{c.at(n) + "rule " + std::to_string(index) + " has no \"action\""};
  std::string a = action.IsScalar() ? action.Scalar() : "";
  if (a == "keep") r.action = Action::kKeep;
  else if (a == "drop") r.action = Action::kDrop;
  else if (a == "drop_label") r.action = Action::kDropLabel;
  else if (a == "replace") r.action = Action::kReplace;
  else if (a == "redact") r.action = Action::kRedact;
  else if (a == "normalize") r.action = Action::kNormalize;
  else if (a == "cardinality") r.action = Action::kCardinality;
  else return Error{c.at(action) + "unknown action \"" + a + "\" (keep, drop, drop_label, replace, redact, normalize, cardinality)"};

  if (const auto& m = n["match"]) {
    if (!m.IsMap()) return Error{c.at(m) + "\"match\" must be a map"};
    if (auto st = checkKeys(c, m, {"metric", "metric_regex"}, "match"); !st) return Error{st.error()};
    if (m["metric"] && m["metric_regex"]) return Error{c.at(m) + "use either \"metric\" or \"metric_regex\", not both"};
    if (m["metric"]) {
      auto s = scalar(c, m["metric"], "metric");
      if (!s) return Error{s.error()};
      if (s->empty()) return Error{c.at(m["metric"]) + "\"metric\" must not be empty"};
      r.metric = NameMatcher::exact(*s);
    } else if (m["metric_regex"]) {
      auto s = scalar(c, m["metric_regex"], "metric_regex");
      if (!s) return Error{s.error()};
      auto re = compile(c, m["metric_regex"], *s);
      if (!re) return Error{re.error()};
      r.metric = NameMatcher::regex(*re);
    }
  }

  const bool label_action = r.action == Action::kDropLabel || r.action == Action::kRedact || r.action == Action::kNormalize;
  const bool takes_labels = label_action || r.action == Action::kKeep || r.action == Action::kCardinality;
  if (n["labels"]) {
    if (!takes_labels)
      return Error{c.at(n["labels"]) + "\"labels\" applies to keep, drop_label, redact, normalize and cardinality only"};
    auto l = stringList(c, n["labels"], "labels");
    if (!l) return Error{l.error()};
    for (const auto& name : *l) {
      if (!validLabelName(name)) return Error{c.at(n["labels"]) + "invalid label name \"" + name + "\""};
      if (label_action && protect.count(name))
        return Error{c.at(n["labels"]) + "label \"" + name + "\" is protected and cannot be " +
                     (r.action == Action::kDropLabel ? "dropped" : "rewritten")};
    }
    r.labels = *l;
  }
  if (n["label_regex"]) {
    if (!takes_labels)
      return Error{c.at(n["label_regex"]) + "\"label_regex\" applies to keep, drop_label, redact, normalize and cardinality only"};
    auto s = scalar(c, n["label_regex"], "label_regex");
    if (!s) return Error{s.error()};
    auto re = compile(c, n["label_regex"], *s);
    if (!re) return Error{re.error()};
    r.label_regex = *re;
  }
  if (label_action && r.labels.empty() && !r.label_regex)
    return Error{c.at(n) + std::string(actionName(r.action)) + " needs \"labels\" or \"label_regex\""};

  if (n["method"]) {
    if (r.action != Action::kRedact) return Error{c.at(n["method"]) + "\"method\" applies to redact only"};
    auto m = redactMethod(c, n["method"]);
    if (!m) return Error{m.error()};
    r.method = *m;
  }
  if (n["mask"]) {
    if (r.action != Action::kRedact) return Error{c.at(n["mask"]) + "\"mask\" applies to redact only"};
    auto m = scalar(c, n["mask"], "mask");
    if (!m) return Error{m.error()};
    r.mask = *m;
  }
  if (r.action == Action::kNormalize) {
    if (!n["normalizer"]) return Error{c.at(n) + "normalize needs \"normalizer\""};
    auto name = scalar(c, n["normalizer"], "normalizer");
    if (!name) return Error{name.error()};
    auto norm = pipeline::normalize::parseNormalizer(*name);
    if (!norm)
      return Error{c.at(n["normalizer"]) + "unknown normalizer \"" + *name +
                   "\" (uuid, ulid, hex, number, timestamp, ip, email, url_path, sql, file_path, auto)"};
    r.normalizer = *norm;
  } else if (n["normalizer"]) {
    return Error{c.at(n["normalizer"]) + "\"normalizer\" applies to normalize only"};
  }

  if (r.action == Action::kReplace) {
    if (!n["source_label"]) return Error{c.at(n) + "replace needs \"source_label\""};
    auto src = scalar(c, n["source_label"], "source_label");
    if (!src) return Error{src.error()};
    if (!validLabelName(*src)) return Error{c.at(n["source_label"]) + "invalid label name \"" + *src + "\""};
    r.source_label = *src;
    r.target_label = r.source_label;
    if (n["target_label"]) {
      auto t = scalar(c, n["target_label"], "target_label");
      if (!t) return Error{t.error()};
      if (!validLabelName(*t)) return Error{c.at(n["target_label"]) + "invalid label name \"" + *t + "\""};
      r.target_label = *t;
    }
    if (protect.count(r.target_label))
      return Error{c.at(n) + "label \"" + r.target_label + "\" is protected and cannot be rewritten"};
    std::string pattern = "(.*)";
    if (n["regex"]) {
      auto p = scalar(c, n["regex"], "regex");
      if (!p) return Error{p.error()};
      pattern = *p;
    }
    auto re = compile(c, n["regex"] ? n["regex"] : n, pattern);
    if (!re) return Error{re.error()};
    r.value_regex = *re;
    r.replacement = "$1";
    if (n["replacement"]) {
      auto rep = scalar(c, n["replacement"], "replacement");
      if (!rep) return Error{rep.error()};
      r.replacement = *rep;
    }
    // Check every $n / ${n} reference against the regex's groups.
    for (size_t i = 0; i < r.replacement.size(); ++i) {
      if (r.replacement[i] != '$') continue;
      if (i + 1 < r.replacement.size() && r.replacement[i + 1] == '$') {  // "$$": a literal "$"
        ++i;
        continue;
      }
      auto ref = scanGroupRef(r.replacement, i, *r.value_regex);
      if (!ref) continue;
      std::string text(ref->text.substr(0, 32));
      if (ref->group < 0)
        return Error{c.at(n["replacement"]) + "replacement refers to unknown group \"" + text + "\""};
      if (ref->group > r.value_regex->NumberOfCapturingGroups())
        return Error{c.at(n["replacement"]) + "replacement refers to group $" + text + " but the regex has " +
                     std::to_string(r.value_regex->NumberOfCapturingGroups())};
      i = ref->end - 1;
    }
  } else {
    for (const char* k : {"source_label", "target_label", "regex", "replacement"})
      if (n[k]) return Error{c.at(n[k]) + "\"" + std::string(k) + "\" applies to replace only"};
  }

  if (auto st = parseCardinality(c, n, r); !st) return Error{st.error()};
  if (n["merge"]) {
    if (r.action == Action::kKeep || r.action == Action::kDrop)
      return Error{c.at(n["merge"]) + "\"merge\" applies to rules that rewrite labels"};
    if (auto st = parseMerge(c, n["merge"], r); !st) return Error{st.error()};
    r.has_merge = true;
  }
  if (n["type"]) {
    std::string t = n["type"].IsScalar() ? n["type"].Scalar() : "";
    if (t == "counter") r.type = TypeHint::kCounter;
    else if (t == "gauge") r.type = TypeHint::kGauge;
    else return Error{c.at(n["type"]) + "\"type\" must be counter or gauge"};
  }
  return r;
}

core::Status parseDocument(const Ctx& c, const YAML::Node& root, RuleSet& set, std::set<std::string>& protect) {
  if (root.IsNull()) return core::Status::Ok();
  if (!root.IsMap()) return Error{c.at(root) + "a rule file is a map with \"rules\" (and optionally \"protected_labels\")"};
  if (auto st = checkKeys(c, root, {"rules", "protected_labels", "detectors"}, "rule file"); !st) return st;
  if (const auto& d = root["detectors"]) {
    if (!d.IsMap()) return Error{c.at(d) + "\"detectors\" must be a map"};
    if (auto st = checkKeys(c, d, {"enabled", "disabled", "action", "mask", "exemplars"}, "detectors"); !st) return st;
    if (d["enabled"] && d["disabled"]) return Error{c.at(d) + "use either \"enabled\" or \"disabled\", not both"};
    for (const char* key : {"enabled", "disabled"}) {
      if (!d[key]) continue;
      auto names = stringList(c, d[key], key);
      if (!names) return Error{names.error()};
      pipeline::sanitize::DetectorMask mask = 0;
      for (const auto& name : *names) {
        auto det = pipeline::sanitize::parseDetector(name);
        if (!det)
          return Error{c.at(d[key]) + "unknown detector \"" + name + "\" (email, ipv4, ipv6, card, jwt, secret, phone)"};
        mask |= pipeline::sanitize::detectorBit(*det);
      }
      set.detectors.enabled = std::string_view(key) == "enabled" ? mask : (pipeline::sanitize::kAllDetectors & ~mask);
    }
    if (d["action"]) {
      auto m = redactMethod(c, d["action"]);
      if (!m) return Error{m.error()};
      set.detectors.action = *m;
    }
    if (d["mask"]) {
      auto m = scalar(c, d["mask"], "mask");
      if (!m) return Error{m.error()};
      set.detectors.mask = *m;
    }
    if (d["exemplars"]) {
      std::string v = d["exemplars"].IsScalar() ? d["exemplars"].Scalar() : "";
      if (v != "true" && v != "false") return Error{c.at(d["exemplars"]) + "\"exemplars\" must be true or false"};
      set.detectors.exemplars = v == "true";
    }
  }
  if (const auto& p = root["protected_labels"]) {
    auto l = stringList(c, p, "protected_labels");
    if (!l) return Error{l.error()};
    for (const auto& name : *l) {
      if (!validLabelName(name)) return Error{c.at(p) + "invalid label name \"" + name + "\""};
      protect.insert(name);
    }
  }
  const auto& rules = root["rules"];
  if (!rules || rules.IsNull()) return core::Status::Ok();
  if (!rules.IsSequence()) return Error{c.at(rules) + "\"rules\" must be a list"};
  size_t i = 0;
  for (const auto& item : rules) {
    auto r = parseRule(c, item, i++, protect);
    if (!r) return Error{r.error()};
    set.rules.push_back(std::move(*r));
  }
  return core::Status::Ok();
}

core::Result<YAML::Node> parseYaml(std::string_view text, const std::string& name) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Error{name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg};
  }
}

core::Result<std::shared_ptr<const RuleSet>> finish(RuleSet set, std::set<std::string> protect) {
  for (const auto& b : builtinProtectedLabels()) protect.insert(b);
  set.protected_labels.assign(protect.begin(), protect.end());
  return std::shared_ptr<const RuleSet>(std::make_shared<RuleSet>(std::move(set)));
}

}  // namespace

core::Result<std::shared_ptr<const RuleSet>> parseRules(std::string_view yaml, const std::string& name) {
  auto root = parseYaml(yaml, name);
  if (!root) return Error{root.error()};
  RuleSet set;
  std::set<std::string> protect(builtinProtectedLabels().begin(), builtinProtectedLabels().end());
  try {
    if (auto st = parseDocument(Ctx{name}, *root, set, protect); !st) return Error{st.error()};
  } catch (const YAML::Exception& e) {
    return Error{name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg};
  } catch (const std::exception& e) {
    // A reload must never take the proxy down; the fuzz target treats this as a bug.
    return Error{name + ": internal error while loading rules: " + e.what()};
  }
  set.files.push_back(name);
  return finish(std::move(set), std::move(protect));
}

core::Result<std::shared_ptr<const RuleSet>> loadRuleFiles(const std::vector<std::string>& paths) {
  RuleSet set;
  std::set<std::string> protect(builtinProtectedLabels().begin(), builtinProtectedLabels().end());
  // Protected labels from every file apply to every file: read them first.
  std::vector<YAML::Node> docs;
  for (const auto& path : paths) {
    std::ifstream in(path);
    if (!in) return Error{path + ": cannot read file"};
    std::stringstream ss;
    ss << in.rdbuf();
    auto root = parseYaml(ss.str(), path);
    if (!root) return Error{root.error()};
    docs.push_back(*root);
    try {
      if (root->IsMap() && (*root)["protected_labels"]) {
        auto l = stringList(Ctx{path}, (*root)["protected_labels"], "protected_labels");
        if (l) protect.insert(l->begin(), l->end());
      }
    } catch (const YAML::Exception& e) {
      return Error{path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg};
    }
  }
  for (size_t i = 0; i < paths.size(); ++i) {
    try {
      if (auto st = parseDocument(Ctx{paths[i]}, docs[i], set, protect); !st) return Error{st.error()};
    } catch (const YAML::Exception& e) {
      return Error{paths[i] + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg};
    } catch (const std::exception& e) {
      return Error{paths[i] + ": internal error while loading rules: " + e.what()};
    }
    set.files.push_back(paths[i]);
  }
  return finish(std::move(set), std::move(protect));
}

}  // namespace cardinal::rules
