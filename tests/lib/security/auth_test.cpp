#include "security/auth.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

using namespace cardinal::security;

namespace {
std::filesystem::path writeTemp(const std::string& name, const std::string& content) {
  auto dir = std::filesystem::temp_directory_path() / ("cardinal-auth-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto p = dir / name;
  std::ofstream(p, std::ios::binary) << content;
  return p;
}
}  // namespace

TEST_CASE("constantTimeEquals") {
  CHECK(constantTimeEquals("", ""));
  CHECK(constantTimeEquals("s3cret-token", "s3cret-token"));
  CHECK_FALSE(constantTimeEquals("s3cret-token", "s3cret-tokeN"));
  CHECK_FALSE(constantTimeEquals("s3cret-token", "s3cret-token2"));  // a prefix is not equal
  CHECK_FALSE(constantTimeEquals("s3cret-token", "s3cret"));
  CHECK_FALSE(constantTimeEquals("a", ""));
  CHECK_FALSE(constantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));  // bytes after a NUL count
  CHECK(constantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
}

TEST_CASE("base64 round trip") {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", "user:pa:ss", std::string("\0\xff\x10", 3)}) {
    std::string out;
    REQUIRE(base64Decode(base64Encode(s), out));
    CHECK(out == s);
  }
  CHECK(base64Encode("alice:wonder") == "YWxpY2U6d29uZGVy");
  std::string out;
  CHECK_FALSE(base64Decode("YWxpY2U6d29uZGVy=", out));  // length not a multiple of 4
  CHECK_FALSE(base64Decode("YW=pY2U6", out));           // padding in the middle
  CHECK_FALSE(base64Decode("YWx!", out));
}

TEST_CASE("basic users file parser") {
  SUBCASE("users, comments, blank lines, CRLF, ':' in passwords") {
    BasicUsers users;
    auto r = parseBasicUsers("# senders\nalice:wonder\r\n\n  \nbob:pa:ss:word\n", "users.txt", users);
    REQUIRE_MESSAGE(r, r.error());
    CHECK(users.size() == 2);
    CHECK(users.at("alice") == sha256("wonder"));
    CHECK(users.at("bob") == sha256("pa:ss:word"));
  }
  SUBCASE("bad lines name file and line, never the password") {
    BasicUsers scratch;
    auto no_colon = parseBasicUsers("alice:wonder\nbob-hunter2\n", "users.txt", scratch);
    REQUIRE_FALSE(no_colon);
    CHECK(no_colon.error() == "users.txt:2: expected user:password");
    CHECK(no_colon.error().find("hunter2") == std::string::npos);
    auto empty_user = parseBasicUsers("# x\n:pw\n", "u", scratch);
    REQUIRE_FALSE(empty_user);
    CHECK(empty_user.error() == "u:2: empty user name");
    auto empty_pw = parseBasicUsers("carol:\n", "u", scratch);
    REQUIRE_FALSE(empty_pw);
    CHECK(empty_pw.error() == "u:1: empty password for user \"carol\"");
    auto twice = parseBasicUsers("a:1\nb:2\na:3\n", "u", scratch);
    REQUIRE_FALSE(twice);
    CHECK(twice.error() == "u:3: user \"a\" listed twice");
    auto none = parseBasicUsers("# only a comment\n", "u", scratch);
    REQUIRE_FALSE(none);
    CHECK(none.error() == "u: no users (one user:password per line)");
  }
}

TEST_CASE("token file parser") {
  auto t = parseTokenFile("  abc.def-123\n", "t");
  REQUIRE(t);
  CHECK(*t == "abc.def-123");
  CHECK_FALSE(parseTokenFile("\n \n", "t"));
  auto two = parseTokenFile("a\nb\n", "t");
  REQUIRE_FALSE(two);
  CHECK(two.error() == "t: the token file has more than one line");
}

TEST_CASE("IngestAuth checks bearer and basic credentials and keeps them over a failed reload") {
  auto token = writeTemp("token", "tok-123\n");
  auto users = writeTemp("users", "alice:wonder\n");
  IngestAuth auth(token.string(), users.string());
  REQUIRE(auth.enabled());
  REQUIRE(auth.reload());
  using V = IngestAuth::Verdict;
  CHECK(auth.check("") == V::kMissing);
  CHECK(auth.check("Bearer tok-123") == V::kAllowed);
  CHECK(auth.check("bearer tok-123") == V::kAllowed);
  CHECK(auth.check("Bearer tok-1234") == V::kWrong);
  CHECK(auth.check("Bearer ") == V::kWrong);
  CHECK(auth.check("Basic " + base64Encode("alice:wonder")) == V::kAllowed);
  CHECK(auth.check("Basic " + base64Encode("alice:wonder!")) == V::kWrong);
  CHECK(auth.check("Basic " + base64Encode("mallory:wonder")) == V::kWrong);
  CHECK(auth.check("Basic !!!") == V::kWrong);
  CHECK(auth.check("Digest x") == V::kWrong);

  // A broken users file: the reload fails, the old credentials stay.
  writeTemp("users", "alice wonder\n");
  auto st = auth.reload();
  REQUIRE_FALSE(st);
  CHECK(st.error().find(":1: expected user:password") != std::string::npos);
  CHECK(auth.check("Basic " + base64Encode("alice:wonder")) == V::kAllowed);
  // A new token takes effect on reload.
  writeTemp("token", "tok-456\n");
  writeTemp("users", "alice:wonder\n");
  REQUIRE(auth.reload());
  CHECK(auth.check("Bearer tok-123") == V::kWrong);
  CHECK(auth.check("Bearer tok-456") == V::kAllowed);
  std::filesystem::remove_all(token.parent_path());
}

TEST_CASE("UpstreamAuth builds the Authorization header from files") {
  auto pw = writeTemp("pw", "s3cret\n");
  UpstreamAuth basic("", "bob", pw.string());
  REQUIRE(basic.validate());
  REQUIRE(basic.reload());
  REQUIRE(basic.header());
  CHECK(*basic.header() == "Basic " + base64Encode("bob:s3cret"));
  CHECK_FALSE(UpstreamAuth("t", "bob", pw.string()).validate());
  CHECK_FALSE(UpstreamAuth("", "bob", "").validate());
  UpstreamAuth none("", "", "");
  CHECK_FALSE(none.enabled());
  REQUIRE(none.reload());
  CHECK(none.header() == nullptr);
  std::filesystem::remove_all(pw.parent_path());
}
