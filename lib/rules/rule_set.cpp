#include "rules/rule_set.h"

#include <atomic>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdint>

namespace cardinal::rules {

uint64_t nextRuleSetInstance() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

std::string_view cardinalityModeName(CardinalityMode m) {
  switch (m) {
    case CardinalityMode::kEnforce: return "enforce";
    case CardinalityMode::kObserve: return "observe";
    case CardinalityMode::kOff: return "off";
  }
  return "enforce";
}

std::string_view actionName(Action a) {
  switch (a) {
    case Action::kKeep: return "keep";
    case Action::kDrop: return "drop";
    case Action::kDropLabel: return "drop_label";
    case Action::kReplace: return "replace";
    case Action::kRedact: return "redact";
    case Action::kNormalize: return "normalize";
    case Action::kCardinality: return "cardinality";
  }
  return "?";
}

std::string_view redactMethodName(RedactMethod m) {
  switch (m) {
    case RedactMethod::kHash: return "hash";
    case RedactMethod::kMask: return "mask";
    case RedactMethod::kDropLabel: return "drop_label";
    case RedactMethod::kDropSeries: return "drop_series";
  }
  return "?";
}

std::optional<GroupRef> scanGroupRef(std::string_view rep, size_t i, const RE2& re) {
  size_t j = i + 1;
  if (j >= rep.size()) return std::nullopt;
  const bool braced = rep[j] == '{';
  if (braced) ++j;
  size_t k = j;
  while (k < rep.size() && (std::isalnum(static_cast<unsigned char>(rep[k])) || rep[k] == '_')) ++k;
  if (k == j || (braced && (k >= rep.size() || rep[k] != '}'))) return std::nullopt;
  GroupRef ref;
  ref.text = rep.substr(j, k - j);
  ref.end = braced ? k + 1 : k;
  if (std::all_of(ref.text.begin(), ref.text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int n = 0;
    auto [p, ec] = std::from_chars(ref.text.data(), ref.text.data() + ref.text.size(), n);
    ref.group = ec == std::errc() && p == ref.text.data() + ref.text.size() ? n : INT32_MAX;
  } else {
    auto it = re.NamedCapturingGroups().find(std::string(ref.text));
    ref.group = it == re.NamedCapturingGroups().end() ? -1 : it->second;
  }
  return ref;
}

bool RuleSet::hasAction(Action a) const {
  for (const auto& r : rules)
    if (r.action == a) return true;
  return false;
}

NameMatcher NameMatcher::exact(std::string s) {
  NameMatcher m;
  m.exact_ = std::move(s);
  return m;
}

NameMatcher NameMatcher::regex(std::shared_ptr<const RE2> re) {
  NameMatcher m;
  m.regex_ = std::move(re);
  return m;
}

bool NameMatcher::matches(std::string_view name) const {
  if (regex_) return RE2::FullMatch(re2::StringPiece(name.data(), name.size()), *regex_);
  return exact_.empty() || exact_ == name;
}

std::string NameMatcher::describe() const {
  if (regex_) return "=~\"" + regex_->pattern() + "\"";
  if (exact_.empty()) return "any";
  return "=\"" + exact_ + "\"";
}

bool Rule::namesLabel(std::string_view label) const {
  for (const auto& l : labels)
    if (l == label) return true;
  return label_regex && RE2::FullMatch(re2::StringPiece(label.data(), label.size()), *label_regex);
}

bool RuleSet::isProtected(std::string_view label) const {
  return std::binary_search(protected_labels.begin(), protected_labels.end(), label,
                            [](std::string_view a, std::string_view b) { return a < b; });
}

}  // namespace cardinal::rules
