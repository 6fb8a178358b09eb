#include "server/io_pool.h"

#include <doctest/doctest.h>
#include <prometheus/registry.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "server/http_server.h"
#include "server/metrics.h"

using namespace cardinal;
namespace net = boost::asio;
namespace http = boost::beast::http;

TEST_CASE("IoPool: each context is run by its own thread, which knows its index; idle contexts keep running") {
  server::IoPool pool(3);
  REQUIRE(pool.size() == 3);
  CHECK(pool.currentIndex() == server::IoPool::kNotInPool);
  std::mutex mu;
  std::map<size_t, size_t> seen;  // context -> index its handler saw
  std::map<size_t, std::thread::id> threads;
  std::atomic<int> done{0};
  // The contexts get their work only after a while: they must not have returned by then (context 0
  // has its timer; the others have nothing at all until it fires).
  net::steady_timer later(pool.main());
  later.expires_after(std::chrono::milliseconds(100));
  later.async_wait([&](boost::system::error_code) {
    for (size_t i = 0; i < pool.size(); ++i)
      net::post(pool.context(i), [&, i] {
        std::lock_guard lock(mu);
        seen[i] = pool.currentIndex();
        threads[i] = std::this_thread::get_id();
        if (++done == 3) pool.stop();
      });
  });
  pool.run();  // returns once stop() was called
  CHECK(done == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(seen[i] == i);
  CHECK(threads[0] == std::this_thread::get_id());  // context 0 runs on the caller
  CHECK(threads[1] != threads[0]);
  CHECK(threads[2] != threads[1]);
  CHECK(pool.currentIndex() == server::IoPool::kNotInPool);  // again, after run()
}

TEST_CASE("HttpServer gives each new connection to the I/O thread with the fewest, and serves it there") {
  // Outlive the pool: sessions still in its contexts when it goes count themselves out.
  prometheus::Registry registry;
  server::ProxyMetrics metrics(registry);
  server::IoPool pool(2);
  server::ServerConfig cfg;
  cfg.listen_address = "127.0.0.1:0";
  std::mutex mu;
  std::map<std::string, std::vector<size_t>> threads_of;  // connection name -> thread of each request
  server::HttpServer srv(pool, cfg, [&](server::Request&& req, server::Responder respond) {
    {
      std::lock_guard lock(mu);
      threads_of[std::string(req[http::field::user_agent])].push_back(pool.currentIndex());
    }
    respond(server::textResponse(http::status::ok, "ok"));
  }, metrics);
  srv.start();
  const auto ep = srv.localEndpoint();
  std::thread io([&] { pool.run(); });

  // Four keep-alive connections, opened one after the other, three requests each.
  net::io_context client;
  std::vector<net::ip::tcp::socket> conns;
  for (int c = 0; c < 4; ++c) {
    conns.emplace_back(client);
    conns.back().connect(ep);
    for (int n = 0; n < 3; ++n) {
      http::request<http::string_body> req{http::verb::get, "/", 11};
      req.set(http::field::host, "test");
      req.set(http::field::user_agent, "conn" + std::to_string(c));
      http::write(conns.back(), req);
      boost::beast::flat_buffer buf;
      http::response<http::string_body> res;
      http::read(conns.back(), buf, res);
      CHECK(res.result() == http::status::ok);
    }
  }
  pool.stop();
  io.join();

  std::map<size_t, int> connections_per_thread;
  for (const auto& [name, threads] : threads_of) {
    REQUIRE(threads.size() == 3);
    CHECK(threads[0] != server::IoPool::kNotInPool);
    CHECK(threads[1] == threads[0]);  // a connection stays on its thread
    CHECK(threads[2] == threads[0]);
    ++connections_per_thread[threads[0]];
  }
  CHECK(threads_of.size() == 4);
  CHECK(connections_per_thread[0] == 2);
  CHECK(connections_per_thread[1] == 2);
}

namespace {
// The CPUs the calling thread may run on.
std::vector<int> myCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

// Runs a pool of `threads` and returns what each context's thread may run on (and which CPU it
// was running on) while it runs.
struct Seen {
  std::vector<int> cpus;
  int running_on = -1;
};
std::map<size_t, Seen> runAndLook(server::IoPool& pool) {
  std::mutex mu;
  std::map<size_t, Seen> seen;
  std::atomic<size_t> done{0};
  for (size_t i = 0; i < pool.size(); ++i)
    net::post(pool.context(i), [&, i] {
      Seen s{myCpus(), sched_getcpu()};
      std::lock_guard lock(mu);
      seen[i] = s;
      if (++done == pool.size()) pool.stop();
    });
  pool.run();
  return seen;
}
}  // namespace

TEST_CASE("IoPool with pinning: thread i keeps to the i-th CPU the process may use; the caller gets its CPUs back") {
  const std::vector<int> before = myCpus();
  REQUIRE(!before.empty());
  const size_t n = 3;  // more threads than CPUs on a 2-CPU machine: round robin
  server::IoPool pool(n, /*pin=*/true);
  const auto seen = runAndLook(pool);
  REQUIRE(seen.size() == n);
  for (size_t i = 0; i < n; ++i) {
    const int want = before[i % before.size()];
    CAPTURE(i);
    CHECK(pool.pinnedCpu(i) == want);
    CHECK(seen.at(i).cpus == std::vector<int>{want});
    CHECK(seen.at(i).running_on == want);
  }
  if (before.size() >= 2) CHECK(pool.pinnedCpu(0) != pool.pinnedCpu(1));  // two CPUs, two threads apart
  CHECK(myCpus() == before);  // context 0 ran on this thread, which may use every CPU again

  server::IoPool unpinned(2);
  const auto free = runAndLook(unpinned);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(unpinned.pinnedCpu(i) == -1);
    CHECK(free.at(i).cpus == before);
  }
}
