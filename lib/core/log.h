#pragma once
// One line per event: `ts=... level=info msg="..." key=value ...`.
// Never pass label values here: they may be secrets. Positions and label
// names are fine.

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace cardinal::core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

bool parseLogLevel(std::string_view s, LogLevel& out);
void setLogLevel(LogLevel level);
LogLevel logLevel();

using LogField = std::pair<std::string_view, std::string>;
void log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});
// The same with fields made at run time.
void logFields(LogLevel level, std::string_view msg, std::span<const LogField> fields);

inline void logDebug(std::string_view m, std::initializer_list<LogField> f = {}) {
  if (logLevel() <= LogLevel::kDebug) log(LogLevel::kDebug, m, f);
}
inline void logInfo(std::string_view m, std::initializer_list<LogField> f = {}) { log(LogLevel::kInfo, m, f); }
inline void logWarn(std::string_view m, std::initializer_list<LogField> f = {}) { log(LogLevel::kWarn, m, f); }
inline void logError(std::string_view m, std::initializer_list<LogField> f = {}) { log(LogLevel::kError, m, f); }

}  // namespace cardinal::core
