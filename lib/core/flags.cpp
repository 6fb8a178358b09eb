#include "core/flags.h"

#include <charconv>
#include <cmath>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace cardinal::core {

Result<std::chrono::milliseconds> parseDuration(std::string_view s) {
  if (s.empty()) return Error{"empty duration"};
  if (s == "0") return std::chrono::milliseconds(0);
  double total_ms = 0;
  std::string_view rest = s;
  while (!rest.empty()) {
    size_t i = 0;
    while (i < rest.size() && ((rest[i] >= '0' && rest[i] <= '9') || rest[i] == '.')) ++i;
    if (i == 0) return Error{"invalid duration \"" + std::string(s) + "\" (e.g. 500ms, 4s, 1m30s)"};
    double num = 0;
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + i, num);
    if (ec != std::errc() || p != rest.data() + i) return Error{"invalid duration \"" + std::string(s) + "\""};
    rest.remove_prefix(i);
    size_t j = 0;
    while (j < rest.size() && !((rest[j] >= '0' && rest[j] <= '9') || rest[j] == '.')) ++j;
    std::string_view unit = rest.substr(0, j);
    rest.remove_prefix(j);
    double mult;
    if (unit == "ms") mult = 1;
    else if (unit == "s") mult = 1000;
    else if (unit == "m") mult = 60'000;
    else if (unit == "h") mult = 3'600'000;
    else if (unit == "d") mult = 86'400'000;
    else return Error{"invalid duration \"" + std::string(s) + "\": unknown unit \"" + std::string(unit) + "\""};
    total_ms += num * mult;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(total_ms)));
}

Result<size_t> parseBytes(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == 0) return Error{"invalid size \"" + std::string(s) + "\" (e.g. 1048576, 512KiB, 32MiB)"};
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + i, n);
  if (ec != std::errc()) return Error{"invalid size \"" + std::string(s) + "\""};
  std::string_view unit = s.substr(i);
  uint64_t mult;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KiB") mult = 1ull << 10;
  else if (unit == "MiB") mult = 1ull << 20;
  else if (unit == "GiB") mult = 1ull << 30;
  else if (unit == "KB") mult = 1000;
  else if (unit == "MB") mult = 1000 * 1000;
  else if (unit == "GB") mult = 1000 * 1000 * 1000;
  else return Error{"invalid size \"" + std::string(s) + "\": unknown unit \"" + std::string(unit) + "\""};
  if (n > (~uint64_t{0}) / mult) return Error{"size \"" + std::string(s) + "\" is too large"};
  return static_cast<size_t>(n * mult);
}

std::string formatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string formatBytes(size_t n) {
  if (n != 0 && n % (1u << 30) == 0) return std::to_string(n >> 30) + "GiB";
  if (n != 0 && n % (1u << 20) == 0) return std::to_string(n >> 20) + "MiB";
  if (n != 0 && n % (1u << 10) == 0) return std::to_string(n >> 10) + "KiB";
  return std::to_string(n);
}

void FlagSet::add(std::string name, Flag f) { flags_.emplace(std::move(name), std::move(f)); }

void FlagSet::addString(std::string name, std::string* t, std::string help) {
  add(std::move(name), {std::move(help), *t, false, false, [t](std::string_view v) {
                          *t = std::string(v);
                          return Status::Ok();
                        }});
}

void FlagSet::addStringList(std::string name, std::vector<std::string>* t, std::string help) {
  add(std::move(name), {std::move(help), "", false, true, [t](std::string_view v) {
                          t->emplace_back(v);
                          return Status::Ok();
                        }});
}

void FlagSet::addBool(std::string name, bool* t, std::string help) {
  add(std::move(name), {std::move(help), *t ? "true" : "false", true, false, [t](std::string_view v) -> Status {
                          if (v == "true" || v == "1") *t = true;
                          else if (v == "false" || v == "0") *t = false;
                          else return Error{"invalid boolean \"" + std::string(v) + "\""};
                          return Status::Ok();
                        }});
}

void FlagSet::addDuration(std::string name, std::chrono::milliseconds* t, std::string help) {
  add(std::move(name), {std::move(help), formatDuration(*t), false, false, [t](std::string_view v) -> Status {
                          auto d = parseDuration(v);
                          if (!d) return Error{d.error()};
                          *t = *d;
                          return Status::Ok();
                        }});
}

void FlagSet::addBytes(std::string name, size_t* t, std::string help) {
  add(std::move(name), {std::move(help), formatBytes(*t), false, false, [t](std::string_view v) -> Status {
                          auto b = parseBytes(v);
                          if (!b) return Error{b.error()};
                          *t = *b;
                          return Status::Ok();
                        }});
}

void FlagSet::addCount(std::string name, size_t* t, std::string help) {
  add(std::move(name), {std::move(help), std::to_string(*t), false, false, [t](std::string_view v) -> Status {
                          size_t n = 0;
                          auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
                          if (ec != std::errc() || p != v.data() + v.size() || v.empty())
                            return Error{"invalid number \"" + std::string(v) + "\""};
                          *t = n;
                          return Status::Ok();
                        }});
}

Status FlagSet::setValue(const std::string& name, std::string_view value, bool from_cli) {
  auto it = flags_.find(name);
  if (it == flags_.end()) return Error{"unknown flag --" + name};
  if (from_cli && set_.count(name) && !it->second.repeatable) return Error{"flag --" + name + " given twice"};
  if (auto st = it->second.set(value); !st) return Error{"--" + name + ": " + st.error()};
  if (from_cli) set_[name] = true;
  return Status::Ok();
}

Status FlagSet::parse(int argc, const char* const* argv, int first, std::vector<std::string>& positional) {
  for (int i = first; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
      break;
    }
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      positional.emplace_back(arg);
      continue;
    }
    arg.remove_prefix(2);
    auto eq = arg.find('=');
    std::string name(arg.substr(0, eq));
    auto it = flags_.find(name);
    if (it == flags_.end()) {
      // --no-foo for booleans, as kingpin allows.
      if (name.rfind("no-", 0) == 0 && eq == std::string_view::npos) {
        auto b = flags_.find(name.substr(3));
        if (b != flags_.end() && b->second.is_bool) {
          if (auto st = setValue(name.substr(3), "false", true); !st) return st;
          continue;
        }
      }
      return Error{"unknown flag --" + name + " (see --help)"};
    }
    std::string_view value;
    if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else if (it->second.is_bool) {
      value = "true";
    } else {
      if (i + 1 >= argc) return Error{"flag --" + name + " needs a value"};
      value = argv[++i];
    }
    if (auto st = setValue(name, value, true); !st) return st;
  }
  return Status::Ok();
}

Status FlagSet::applyYamlFile(const std::string& path, std::vector<std::string>* problems) {
  std::vector<std::string> local;
  std::vector<std::string>& found = problems ? *problems : local;
  const size_t first = found.size();
  auto fail = [&](std::string what) -> bool {  // true: stop here
    found.push_back(std::move(what));
    return problems == nullptr;
  };
  auto result = [&]() -> Status { return found.size() > first ? Status(Error{found[first]}) : Status::Ok(); };
  yaml_lines_.clear();
  yaml_loaded_ = false;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    fail(path + ": cannot read the file");
    return result();
  } catch (const YAML::Exception& e) {
    fail(path + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
    return result();
  }
  if (root.IsNull()) {
    yaml_loaded_ = true;
    return Status::Ok();
  }
  if (!root.IsMap()) {
    fail(path + ":" + std::to_string(root.Mark().line + 1) + ": expected a map of flag names to values");
    return result();
  }
  yaml_loaded_ = true;
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    int line = kv.first.Mark().line + 1;
    auto where = path + ":" + std::to_string(line) + ": ";
    if (!flags_.count(key)) {
      if (fail(where + "unknown setting \"" + key + "\" (keys are flag names without --)")) return result();
      continue;
    }
    yaml_lines_[key] = line;
    if (set_.count(key)) continue;  // the command line wins
    const YAML::Node& v = kv.second;
    if (v.IsSequence()) {
      if (!flags_.at(key).repeatable) {
        if (fail(where + "\"" + key + "\" takes one value, not a list")) return result();
        continue;
      }
      for (const auto& item : v) {
        if (!item.IsScalar()) {
          if (fail(where + "\"" + key + "\" needs a list of scalar values")) return result();
          break;
        }
        if (auto st = setValue(key, item.as<std::string>(), false); !st && fail(where + st.error())) return result();
      }
    } else if (v.IsScalar()) {
      if (auto st = setValue(key, v.as<std::string>(), false); !st && fail(where + st.error())) return result();
    } else {
      if (fail(where + "\"" + key + "\" needs a scalar value")) return result();
    }
  }
  return result();
}

std::string FlagSet::usage() const {
  std::ostringstream out;
  out << "usage: " << program_ << " [<flags>]\n\nFlags:\n";
  for (const auto& [name, f] : flags_) {
    std::string left = "  --" + name + (f.is_bool ? "" : "=<value>");
    out << left;
    if (left.size() < 40) out << std::string(40 - left.size(), ' ');
    else out << "\n" << std::string(40, ' ');
    out << f.help;
    if (f.repeatable) out << " (repeatable)";
    else if (!f.default_text.empty()) out << " (default: " << f.default_text << ")";
    out << "\n";
  }
  return out.str();
}

}  // namespace cardinal::core
