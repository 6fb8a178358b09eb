#pragma once
// Small file helpers for state snapshots: whole-file reads and atomic writes
// (temporary file, fsync, rename, fsync of the directory).

#include <string>

#include "core/result.h"

namespace cardinal::core {

Result<std::string> readFile(const std::string& path);
Status writeFileAtomic(const std::string& path, const std::string& data, unsigned mode = 0600);
Status ensureDirectory(const std::string& path);

}  // namespace cardinal::core
