// libFuzzer target: the rule-file loader. Any input must give a RuleSet or an
// error that starts with "file:line:" (or "file:"), never a crash or hang.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "rules/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto r = cardinal::rules::parseRules(yaml, "fuzz.yaml");
  if (!r.ok() && r.error().rfind("fuzz.yaml:", 0) != 0) abort();
  // An exception escaped a check (the catch-all message has no line number,
  // so input text that merely says "internal error" does not match).
  if (!r.ok() && r.error().rfind("fuzz.yaml: internal error while loading rules:", 0) == 0) abort();
  if (r.ok()) {
    for (const auto& rule : (*r)->rules) {
      for (const auto& l : rule.labels)
        if ((*r)->isProtected(l) && rule.action == cardinal::rules::Action::kDropLabel) abort();
    }
  }
  return 0;
}
