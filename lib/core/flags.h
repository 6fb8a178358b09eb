#pragma once
// Command-line flags in Prometheus style (`--name=value` or `--name value`,
// booleans as `--name` or `--name=false`), optionally read from a flat YAML
// file whose keys are the flag names; flags given on the command line win.

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace cardinal::core {

Result<std::chrono::milliseconds> parseDuration(std::string_view s);  // "500ms", "4s", "1m30s", "2h"
Result<size_t> parseBytes(std::string_view s);                        // "1024", "16KiB", "32MiB", "1GB"
std::string formatDuration(std::chrono::milliseconds d);
std::string formatBytes(size_t n);

class FlagSet {
 public:
  explicit FlagSet(std::string program) : program_(std::move(program)) {}

  void addString(std::string name, std::string* target, std::string help);
  void addStringList(std::string name, std::vector<std::string>* target, std::string help);  // repeatable
  void addBool(std::string name, bool* target, std::string help);
  void addDuration(std::string name, std::chrono::milliseconds* target, std::string help);
  void addBytes(std::string name, size_t* target, std::string help);
  void addCount(std::string name, size_t* target, std::string help);

  // Parses argv[first..]; non-flag arguments go to `positional`.
  Status parse(int argc, const char* const* argv, int first, std::vector<std::string>& positional);
  // Applies a flat YAML map {flag-name: value}; skips flags set on the command line. Errors are
  // "path:line: what". With `problems`, goes on past a bad key and appends every problem there
  // (`cardinal check config`); the returned status is then the first of them.
  Status applyYamlFile(const std::string& path, std::vector<std::string>* problems = nullptr);
  bool wasSet(const std::string& name) const { return set_.count(name) > 0; }
  // Whether the last applyYamlFile() could read and parse its file as a map (its keys and values
  // may still have been refused).
  bool yamlLoaded() const { return yaml_loaded_; }
  // The line of the YAML file that set `name` in the last applyYamlFile(), 0 if none did.
  int yamlLine(const std::string& name) const {
    auto it = yaml_lines_.find(name);
    return it == yaml_lines_.end() ? 0 : it->second;
  }
  std::string usage() const;

 private:
  struct Flag {
    std::string help;
    std::string default_text;
    bool is_bool = false;
    bool repeatable = false;
    std::function<Status(std::string_view)> set;
  };
  void add(std::string name, Flag f);
  Status setValue(const std::string& name, std::string_view value, bool from_cli);

  std::string program_;
  std::map<std::string, Flag> flags_;
  std::map<std::string, bool> set_;
  std::map<std::string, int> yaml_lines_;
  bool yaml_loaded_ = false;
};

}  // namespace cardinal::core
