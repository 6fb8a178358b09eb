#include "rules/rule_files.h"

#include <yaml-cpp/yaml.h>

namespace cardinal::rules {

core::Result<RuleFileSet> loadRuleFiles(const std::vector<std::string>& paths) {
  RuleFileSet set;
  for (const auto& path : paths) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
      return core::Error{path + ": cannot read file"};
    } catch (const YAML::Exception& e) {
      return core::Error{path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg};
    }
    set.files.push_back(path);
    if (root.IsNull()) continue;
    auto where = [&](const YAML::Node& n) { return path + ":" + std::to_string(n.Mark().line + 1) + ": "; };
    if (!root.IsMap()) return core::Error{where(root) + "a rule file is a map with a \"rules\" list"};
    for (const auto& kv : root) {
      auto key = kv.first.as<std::string>();
      if (key != "rules") return core::Error{where(kv.first) + "unknown key \"" + key + "\""};
      if (!kv.second.IsNull() && !kv.second.IsSequence())
        return core::Error{where(kv.second) + "\"rules\" must be a list"};
      if (kv.second.IsSequence() && kv.second.size() > 0)
        return core::Error{where(kv.second[0]) +
                           "rule actions are not supported by this version of cardinal (pass-through only)"};
    }
  }
  return set;
}

}  // namespace cardinal::rules
