#include "core/socket_wait.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

using cardinal::core::enableReceiveTimestamps;
using cardinal::core::receiveTimed;

namespace {
// A connected pair of loopback TCP sockets: [0] the client, [1] the accepted end.
struct LoopbackPair {
  int fd[2] = {-1, -1};
  // `listener_timestamps`: SO_TIMESTAMPNS on the listening socket, and "ab" written by the
  // client before the connection is accepted.
  explicit LoopbackPair(bool listener_timestamps = false) {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listener_timestamps) REQUIRE(enableReceiveTimestamps(listener));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    fd[0] = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(::connect(fd[0], reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    if (listener_timestamps) {
      REQUIRE(::write(fd[0], "ab", 2) == 2);
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    fd[1] = ::accept(listener, nullptr, nullptr);
    REQUIRE(fd[1] >= 0);
    ::close(listener);
  }
  ~LoopbackPair() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
};

// The kernel stamps received packets only while some socket wants stamps, and
// turns that on through deferred work: data that arrives right after the first
// such socket asked (on an otherwise quiet machine) comes without a stamp.
// Held for a test's duration, this pair keeps stamping on, after waiting (at
// most 2 s) until one of its own bytes arrived stamped.
struct StampingOn {
  LoopbackPair p;
  StampingOn() {
    REQUIRE(enableReceiveTimestamps(p.fd[1]));
    int64_t wait = -1;
    char byte;
    for (int i = 0; i < 200 && wait < 0; ++i) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      REQUIRE(::write(p.fd[0], "x", 1) == 1);
      REQUIRE(receiveTimed(p.fd[1], &byte, 1, 0, &wait) == 1);
    }
    REQUIRE(wait >= 0);
  }
};
}  // namespace

TEST_CASE("receiveTimed: how long the data lay in the socket, from the kernel's receive timestamp") {
  StampingOn stamping;
  LoopbackPair p;
  int64_t wait = 0;
  char buf[8] = {};

  SUBCASE("without SO_TIMESTAMPNS: the data, no wait") {
    REQUIRE(::write(p.fd[0], "ab", 2) == 2);
    // Blocking read: the data may not have crossed the loopback yet.
    CHECK(receiveTimed(p.fd[1], buf, sizeof buf, 0, &wait) == 2);
    CHECK(wait == -1);
  }

  SUBCASE("with it: at least the time the data waited; a peek leaves the data") {
    REQUIRE(enableReceiveTimestamps(p.fd[1]));
    REQUIRE(::write(p.fd[0], "ab", 2) == 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    CHECK(receiveTimed(p.fd[1], buf, 1, MSG_PEEK, &wait) == 1);
    CHECK(buf[0] == 'a');
    CHECK(wait >= 25'000'000);
    CHECK(wait < 10'000'000'000);
    CHECK(receiveTimed(p.fd[1], buf, sizeof buf, 0, &wait) == 2);  // still there, both bytes
    CHECK(buf[0] == 'a');
    CHECK(buf[1] == 'b');
    CHECK(wait >= 25'000'000);
  }

  SUBCASE("nothing to read: recvmsg's answer, no wait") {
    CHECK(receiveTimed(p.fd[1], buf, sizeof buf, MSG_DONTWAIT, &wait) == -1);
    CHECK(wait == -1);
  }
}

TEST_CASE("receiveTimed: a connection accepted from a listener with SO_TIMESTAMPNS has it, for data sent "
          "before the accept too") {
  StampingOn stamping;
  LoopbackPair p(true);
  int64_t wait = 0;
  char buf[8] = {};
  CHECK(receiveTimed(p.fd[1], buf, sizeof buf, 0, &wait) == 2);
  CHECK(wait >= 25'000'000);
}
