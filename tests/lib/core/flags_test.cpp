#include "core/flags.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

using namespace cardinal::core;
using std::chrono::milliseconds;

TEST_CASE("parseDuration") {
  CHECK(parseDuration("500ms").value() == milliseconds(500));
  CHECK(parseDuration("4s").value() == milliseconds(4000));
  CHECK(parseDuration("1m30s").value() == milliseconds(90'000));
  CHECK(parseDuration("2h").value() == milliseconds(7'200'000));
  CHECK(parseDuration("1.5s").value() == milliseconds(1500));
  CHECK(parseDuration("0").value() == milliseconds(0));
  CHECK_FALSE(parseDuration("").ok());
  CHECK_FALSE(parseDuration("5").ok());
  CHECK_FALSE(parseDuration("5x").ok());
  CHECK_FALSE(parseDuration("s").ok());
}

TEST_CASE("parseBytes and formatBytes") {
  CHECK(parseBytes("1024").value() == 1024);
  CHECK(parseBytes("16KiB").value() == 16384);
  CHECK(parseBytes("32MiB").value() == 32u << 20);
  CHECK(parseBytes("1GB").value() == 1'000'000'000);
  CHECK_FALSE(parseBytes("MiB").ok());
  CHECK_FALSE(parseBytes("12 MiB").ok());
  CHECK_FALSE(parseBytes("99999999999999999999GiB").ok());
  CHECK(formatBytes(32u << 20) == "32MiB");
  CHECK(formatBytes(1000) == "1000");
}

TEST_CASE("FlagSet parses Prometheus-style flags") {
  std::string url = "x";
  bool dry = false;
  milliseconds timeout{5000};
  size_t count = 7;
  std::vector<std::string> files;
  FlagSet f("t");
  f.addString("upstream.url", &url, "u");
  f.addBool("dry-run", &dry, "d");
  f.addDuration("upstream.timeout", &timeout, "t");
  f.addCount("n", &count, "n");
  f.addStringList("rules.file", &files, "r");
  std::vector<std::string> pos;

  SUBCASE("both value forms, repeatable lists, booleans") {
    const char* argv[] = {"t", "--upstream.url=http://a", "--upstream.timeout", "2s", "--dry-run",
                          "--rules.file=a.yaml", "--rules.file", "b.yaml", "check"};
    REQUIRE(f.parse(9, argv, 1, pos).ok());
    CHECK(url == "http://a");
    CHECK(timeout == milliseconds(2000));
    CHECK(dry);
    CHECK(files == std::vector<std::string>{"a.yaml", "b.yaml"});
    CHECK(pos == std::vector<std::string>{"check"});
  }
  SUBCASE("errors name the flag") {
    const char* argv1[] = {"t", "--nope=1"};
    auto st = f.parse(2, argv1, 1, pos);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().find("--nope") != std::string::npos);
    const char* argv2[] = {"t", "--upstream.timeout=fast"};
    st = f.parse(2, argv2, 1, pos);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().find("--upstream.timeout") != std::string::npos);
    const char* argv3[] = {"t", "--n"};
    CHECK_FALSE(f.parse(2, argv3, 1, pos).ok());
  }
  SUBCASE("config file fills what the command line left unset") {
    std::string path = "/tmp/cardinal_flags_test.yaml";
    {
      std::ofstream out(path);
      out << "upstream.url: http://from-file\nn: 42\nrules.file: [x.yaml, y.yaml]\n";
    }
    const char* argv[] = {"t", "--n=3"};
    REQUIRE(f.parse(2, argv, 1, pos).ok());
    auto st = f.applyYamlFile(path);
    REQUIRE_MESSAGE(st.ok(), st.error());
    CHECK(url == "http://from-file");
    CHECK(count == 3);  // the command line wins
    CHECK(files.size() == 2);
    {
      std::ofstream out(path);
      out << "upstream.url: a\nbogus.key: 1\n";
    }
    st = f.applyYamlFile(path);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error() == path + ":2: unknown setting \"bogus.key\" (keys are flag names without --)");
    std::remove(path.c_str());
  }
  SUBCASE("check mode: every problem of a config file, with its line") {
    std::string path = "/tmp/cardinal_flags_check_test.yaml";
    {
      std::ofstream out(path);
      out << "upstream.url: http://u\nbogus: 1\nupstream.timeout: soon\nn: [1, 2]\nrules.file: [a.yaml]\n";
    }
    std::vector<std::string> problems;
    auto st = f.applyYamlFile(path, &problems);
    REQUIRE_FALSE(st.ok());
    CHECK(f.yamlLoaded());
    REQUIRE(problems.size() == 3);
    CHECK(st.error() == problems[0]);
    CHECK(problems[0] == path + ":2: unknown setting \"bogus\" (keys are flag names without --)");
    CHECK(problems[1].rfind(path + ":3: --upstream.timeout: invalid duration", 0) == 0);
    CHECK(problems[2] == path + ":4: \"n\" takes one value, not a list");
    CHECK(url == "http://u");  // the good keys still apply
    CHECK(files == std::vector<std::string>{"a.yaml"});
    CHECK(f.yamlLine("upstream.url") == 1);
    CHECK(f.yamlLine("rules.file") == 5);
    CHECK(f.yamlLine("dry-run") == 0);
    {
      std::ofstream out(path);
      out << "a: [unclosed\n";
    }
    problems.clear();
    st = f.applyYamlFile(path, &problems);
    REQUIRE_FALSE(st.ok());
    CHECK_FALSE(f.yamlLoaded());
    CHECK(st.error().rfind(path + ":", 0) == 0);
    CHECK(st.error().find("invalid YAML") != std::string::npos);
    std::remove(path.c_str());
    problems.clear();
    CHECK_FALSE(f.applyYamlFile(path, &problems).ok());
    CHECK(problems == std::vector<std::string>{path + ": cannot read the file"});
  }
  SUBCASE("usage lists every flag with its default") {
    std::string u = f.usage();
    CHECK(u.find("--upstream.timeout=<value>") != std::string::npos);
    CHECK(u.find("(default: 5s)") != std::string::npos);
    CHECK(u.find("(default: 7)") != std::string::npos);
    CHECK(u.find("--dry-run") != std::string::npos);
  }
}
