#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <google/protobuf/stubs/logging.h>

int main(int argc, char** argv) {
  // The differential tests feed invalid UTF-8 to the generated parser on
  // purpose; its refusals are asserted, not logged.
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
