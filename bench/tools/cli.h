#pragma once
// The command line of the bench tools (cardinal_loadgen, cardinal_sink): flags only, no
// positional arguments, --help prints the usage.

#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/flags.h"

namespace cardinal::bench {

// Parses argv into `f`'s flags. Returns the exit code when the tool should stop (0 after
// --help, 2 on a bad command line, with a message on stderr), or nullopt to go on.
inline std::optional<int> parseToolFlags(core::FlagSet& f, int argc, char** argv, const bool& help,
                                         std::string_view tool) {
  std::vector<std::string> positional;
  if (auto st = f.parse(argc, argv, 1, positional); !st) {
    std::cerr << tool << ": " << st.error() << "\n";
    return 2;
  }
  if (help) {
    std::cout << f.usage();
    return 0;
  }
  if (!positional.empty()) {
    std::cerr << tool << ": unexpected argument \"" << positional[0] << "\"\n";
    return 2;
  }
  return std::nullopt;
}

}  // namespace cardinal::bench
