#include "pipeline/sanitize/redactor.h"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

using cardinal::pipeline::sanitize::Redactor;

TEST_CASE("tokens are stable, keyed, and look like tokens") {
  Redactor a(std::vector<uint8_t>(32, 1)), b(std::vector<uint8_t>(32, 2));
  std::string t1, t2, t3;
  a.token("joao.silva@example.com", t1);
  a.token("joao.silva@example.com", t2);
  b.token("joao.silva@example.com", t3);
  CHECK(t1 == t2);
  CHECK(t1 != t3);
  CHECK(t1.size() == 18);
  CHECK(t1.rfind("h:", 0) == 0);
  CHECK(Redactor::isToken(t1));
  CHECK_FALSE(Redactor::isToken("h:xyz"));
  a.token("maria@example.com", t2);
  CHECK(t1 != t2);
}

TEST_CASE("a key is generated once with mode 0600 and reused; short keys are refused") {
  std::string dir = "/tmp/cardinal_redactor_test";
  std::filesystem::remove_all(dir);
  auto r1 = Redactor::loadOrCreate("", dir);
  REQUIRE_MESSAGE(r1.ok(), r1.error());
  struct stat st {};
  REQUIRE(::stat((dir + "/hmac.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto r2 = Redactor::loadOrCreate("", dir);
  REQUIRE(r2.ok());
  std::string t1, t2;
  r1->token("v", t1);
  r2->token("v", t2);
  CHECK(t1 == t2);  // the same key after a restart

  std::ofstream(dir + "/short.key") << "abcd";
  auto bad = Redactor::fromKeyFile(dir + "/short.key");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().find("need at least 32") != std::string::npos);
  CHECK(bad.error().find("abcd") == std::string::npos);  // never print key material
  std::filesystem::remove_all(dir);
}
