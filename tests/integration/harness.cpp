#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <doctest/doctest.h>
#include <snappy.h>

extern char** environ;

namespace cardinal::integration {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

int64_t nowMs() {
  return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// A port the kernel gives for bind(0) on loopback; free once the socket is closed.
uint16_t kernelFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("freePort: socket: " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("freePort: bind: " + err);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

uint16_t freePort() {
  // The kernel may give the same port to two bind(0) calls in a row once the first socket is
  // closed: a Collector got one port for its OTLP receiver and its telemetry and could not start
  // (CI, 2026-11-27). A port handed out once is never handed out again by this process.
  static std::mutex mu;
  static std::set<uint16_t> given;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const uint16_t port = kernelFreePort();
    std::lock_guard lock(mu);
    if (given.insert(port).second) return port;
  }
  throw std::runtime_error("freePort: the kernel kept giving ports already handed out");
}

bool waitUntil(const std::function<bool()>& predicate, Millis timeout, Millis interval) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (predicate()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

std::string binaryPath(const char* env_var, const std::string& fallback) {
  const char* v = std::getenv(env_var);
  return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}

// ---------------------------------------------------------------------------------------------
// TempDir

TempDir::TempDir(std::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" +
                     std::string(prefix) + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (std::getenv("CARDINAL_IT_KEEP_TMP") != nullptr) {
    std::cerr << "keeping " << path_ << "\n";
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path TempDir::subdir(std::string_view name) const {
  auto p = path_ / name;
  std::filesystem::create_directories(p);
  return p;
}

std::filesystem::path TempDir::writeFile(std::string_view name, std::string_view content) const {
  auto p = path_ / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
  return p;
}

std::filesystem::path TempDir::writeFileAtomic(std::string_view name,
                                               std::string_view content) const {
  auto final_path = path_ / name;
  auto tmp = path_ / (std::string(name) + ".tmp-" + std::to_string(::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, final_path);
  return final_path;
}

// ---------------------------------------------------------------------------------------------
// Process

namespace {

// Live children, for the signal handler. Slots hold a pid or 0; async-signal-safe to read.
constexpr size_t kMaxChildren = 64;
std::array<std::atomic<int>, kMaxChildren> g_children{};

void registerChild(int pid) {
  for (auto& slot : g_children) {
    int expected = 0;
    if (slot.compare_exchange_strong(expected, pid)) return;
  }
}

void unregisterChild(int pid) {
  for (auto& slot : g_children) {
    int expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

extern "C" void reapChildrenAndReraise(int sig) {
  for (auto& slot : g_children) {
    int pid = slot.load();
    if (pid > 0) ::kill(pid, SIGKILL);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

ExitStatus toExitStatus(int wstatus) {
  ExitStatus s;
  if (WIFEXITED(wstatus)) {
    s.exited = true;
    s.code = WEXITSTATUS(wstatus);
  } else if (WIFSIGNALED(wstatus)) {
    s.signal = WTERMSIG(wstatus);
  }
  return s;
}

bool isMainThread() { return ::syscall(SYS_gettid) == ::getpid(); }

}  // namespace

void installChildReaperSignalHandlers() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, reapChildrenAndReraise);
}

std::string ExitStatus::toString() const {
  if (exited) return "exit code " + std::to_string(code);
  return "killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
}

Process::Process(std::string name, std::vector<std::string> argv, std::filesystem::path log_file,
                 std::filesystem::path working_dir)
    : name_(std::move(name)), argv_(std::move(argv)), log_file_(std::move(log_file)) {
  if (argv_.empty()) throw std::invalid_argument("Process: empty argv");
  int fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("open " + log_file_.string() + ": " + std::strerror(errno));
  {
    std::string header = "$";
    for (const auto& a : argv_) header += " " + a;
    header += "\n";
    (void)!::write(fd, header.data(), header.size());
  }

  // A child spawned from the main thread dies with the test binary (PR_SET_PDEATHSIG is tied
  // to the spawning thread, so only the main thread, which lives until exit, is safe).
  std::vector<std::string> full;
  if (isMainThread() && ::access("/usr/bin/setpriv", X_OK) == 0) {
    full = {"/usr/bin/setpriv", "--pdeathsig", "KILL", "--"};
  }
  full.insert(full.end(), argv_.begin(), argv_.end());
  std::vector<char*> cargv;
  for (auto& a : full) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fd, 1);
  posix_spawn_file_actions_adddup2(&fa, fd, 2);
  if (!working_dir.empty()) posix_spawn_file_actions_addchdir_np(&fa, working_dir.c_str());

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  sigset_t all_signals;
  sigfillset(&all_signals);
  posix_spawnattr_setsigmask(&attr, &empty_mask);
  posix_spawnattr_setsigdefault(&attr, &all_signals);
  // Own process group: a Ctrl-C in the terminal reaches only the test binary, which kills us.
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(fd);
  if (rc != 0) {
    throw std::runtime_error("spawn " + name_ + " (" + argv_[0] + "): " + std::strerror(rc));
  }
  pid_ = pid;
  registerChild(pid_);
}

Process::~Process() {
  if (!status_ && pid_ > 0) kill();
}

bool Process::running() {
  if (status_) return false;
  int wstatus = 0;
  pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
  if (r == pid_) {
    status_ = toExitStatus(wstatus);
    unregisterChild(pid_);
    return false;
  }
  return true;
}

void Process::signal(int sig) {
  signalled_ = true;
  if (running()) ::kill(pid_, sig);
}

std::optional<ExitStatus> Process::waitExit(Millis timeout) {
  waitUntil([&] { return !running(); }, timeout, Millis(10));
  return status_;
}

ExitStatus Process::kill() {
  if (!status_) {
    ::kill(pid_, SIGKILL);
    int wstatus = 0;
    while (::waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
    }
    status_ = toExitStatus(wstatus);
    unregisterChild(pid_);
  }
  return *status_;
}

std::string Process::logContents() const {
  std::ifstream in(log_file_, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Process::logTail(size_t max_lines) const {
  std::string all = logContents();
  size_t pos = all.size();
  size_t lines = 0;
  while (pos > 0) {
    size_t nl = all.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      pos = 0;
      break;
    }
    if (nl + 1 < all.size() && ++lines > max_lines) {
      pos = nl + 1;
      break;
    }
    pos = nl;
  }
  std::string tail = all.substr(pos);
  constexpr size_t kMaxChars = 8000;
  if (tail.size() > kMaxChars) tail = "..." + tail.substr(tail.size() - kMaxChars);
  return tail;
}

std::string CommandResult::summary() const {
  std::string s = status ? status->toString() : std::string("did not finish in time (killed)");
  return s + "\n--- stdout ---\n" + out + "--- stderr ---\n" + err + "--- end ---";
}

CommandResult runCommand(const TempDir& dir, const std::string& name,
                         const std::vector<std::string>& argv,
                         const std::filesystem::path& working_dir, Millis timeout) {
  if (argv.empty()) throw std::invalid_argument("runCommand: empty argv");
  const auto out_path = dir.path() / (name + ".stdout");
  const auto err_path = dir.path() / (name + ".stderr");
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!working_dir.empty()) posix_spawn_file_actions_addchdir_np(&fa, working_dir.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  sigset_t all_signals;
  sigfillset(&all_signals);
  posix_spawnattr_setsigmask(&attr, &empty_mask);
  posix_spawnattr_setsigdefault(&attr, &all_signals);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("spawn " + name + " (" + argv[0] + "): " + std::strerror(rc));
  registerChild(pid);

  CommandResult result;
  int wstatus = 0;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    pid_t r = ::waitpid(pid, &wstatus, WNOHANG);
    if (r == pid) {
      result.status = toExitStatus(wstatus);
      break;
    }
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::this_thread::sleep_for(Millis(10));
  }
  unregisterChild(pid);
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  return result;
}

std::string describe(Process& process, size_t max_lines) {
  std::ostringstream ss;
  ss << process.name() << " (pid " << process.pid() << ", ";
  if (process.running()) {
    ss << "running";
  } else {
    ss << process.exitStatus()->toString();
  }
  ss << "), log " << process.logFile().string() << "\n--- last lines of " << process.name()
     << " log ---\n"
     << process.logTail(max_lines) << "--- end of " << process.name() << " log ---";
  return ss.str();
}

// ---------------------------------------------------------------------------------------------
// HTTP client

std::optional<std::string> HttpHeaders::get(std::string_view name) const {
  for (const auto& [k, v] : fields) {
    if (k.size() == name.size() &&
        std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return v;
    }
  }
  return std::nullopt;
}

std::string HttpResponse::summary(size_t max_body) const {
  if (status == 0) return "transport error: " + error;
  std::string b = body.size() > max_body ? body.substr(0, max_body) + "...(" +
                                               std::to_string(body.size()) + " bytes)"
                                         : body;
  return "HTTP " + std::to_string(status) + ": " + b;
}

Url Url::parse(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    throw std::invalid_argument("only http:// URLs: " + std::string(url));
  }
  url.remove_prefix(kScheme.size());
  Url u;
  size_t slash = url.find('/');
  std::string_view hostport = url.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  size_t colon = hostport.rfind(':');
  if (colon == std::string_view::npos) {
    u.host = std::string(hostport);
    u.port = 80;
  } else {
    u.host = std::string(hostport.substr(0, colon));
    unsigned port = 0;
    auto sv = hostport.substr(colon + 1);
    auto [p, ec] = std::from_chars(sv.data(), sv.data() + sv.size(), port);
    if (ec != std::errc() || p != sv.data() + sv.size() || port > 65535) {
      throw std::invalid_argument("bad port in " + std::string(url));
    }
    u.port = static_cast<uint16_t>(port);
  }
  return u;
}

HttpResponse httpRequest(std::string_view method, std::string_view url, std::string_view body,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         Millis timeout) {
  HttpResponse out;
  Url u;
  try {
    u = Url::parse(url);
  } catch (const std::exception& e) {
    out.error = e.what();
    return out;
  }
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  auto step = [&](const char* what) {
    ioc.run();
    ioc.restart();
    if (ec) out.error = std::string(what) + ": " + ec.message();
    return !ec;
  };

  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(u.host, std::to_string(u.port), ec);
  if (ec) {
    out.error = "resolve " + u.host + ": " + ec.message();
    return out;
  }
  stream.expires_after(timeout);
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  if (!step("connect")) return out;

  http::request<http::string_body> req;
  req.method_string(std::string(method));
  req.target(u.target);
  req.version(11);
  req.set(http::field::host, u.host + ":" + std::to_string(u.port));
  req.set(http::field::user_agent, "cardinal-integration-tests");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = std::string(body);
  if (!body.empty() || method == "POST" || method == "PUT") req.prepare_payload();
  req.keep_alive(false);
  http::async_write(stream, req, [&](beast::error_code e, size_t) { ec = e; });
  std::string write_error;
  if (!step("write")) {
    // The server may have answered (e.g. 413) and closed before reading the whole body.
    write_error = out.error + "; ";
    ec = {};
    out.error.clear();
  }

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::uint64_t{512} << 20);
  http::async_read(stream, buffer, parser, [&](beast::error_code e, size_t) { ec = e; });
  if (!step("read")) {
    out.error = write_error + out.error;
    return out;
  }

  const auto& res = parser.get();
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    out.headers.fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
  }
  out.body = res.body();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return out;
}

RawExchange rawExchange(uint16_t port, std::string_view bytes, bool half_close, Millis timeout) {
  return rawExchange(port, std::vector<std::string>{std::string(bytes)}, Millis(0), half_close, timeout);
}

RawExchange rawExchange(uint16_t port, const std::vector<std::string>& pieces, Millis pause,
                        bool half_close, Millis timeout) {
  RawExchange out;
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  auto run = [&] {
    ioc.run();
    ioc.restart();
  };
  stream.expires_after(timeout);
  stream.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                       [&](beast::error_code e) { ec = e; });
  run();
  if (ec) {
    out.error = "connect: " + ec.message();
    return out;
  }
  out.connected = true;
  for (size_t i = 0; i < pieces.size() && !ec; ++i) {
    if (i > 0) std::this_thread::sleep_for(pause);
    net::async_write(stream, net::buffer(pieces[i]), [&](beast::error_code e, size_t) { ec = e; });
    run();
    if (ec) out.error = "write: " + ec.message();
  }
  if (half_close) stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, 4096> buf;
  for (;;) {
    size_t n = 0;
    stream.async_read_some(net::buffer(buf), [&](beast::error_code e, size_t k) {
      ec = e;
      n = k;
    });
    run();
    out.received.append(buf.data(), n);
    if (ec) {
      if (ec != net::error::eof) out.error += (out.error.empty() ? "" : "; ") + ec.message();
      break;
    }
  }
  return out;
}

std::string urlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Remote write

prometheus::Label* addLabel(prometheus::TimeSeries& ts, std::string name, std::string value) {
  auto* l = ts.add_labels();
  l->set_name(std::move(name));
  l->set_value(std::move(value));
  return l;
}

prometheus::TimeSeries* addSeries(prometheus::WriteRequest& req,
                                  const std::vector<std::pair<std::string, std::string>>& labels,
                                  const std::vector<std::pair<double, int64_t>>& samples) {
  auto* ts = req.add_timeseries();
  for (const auto& [n, v] : labels) addLabel(*ts, n, v);
  for (const auto& [value, t] : samples) {
    auto* s = ts->add_samples();
    s->set_value(value);
    s->set_timestamp(t);
  }
  return ts;
}

std::string snappyCompress(std::string_view raw) {
  std::string out(snappy::MaxCompressedLength(raw.size()), '\0');
  size_t n = 0;
  snappy::RawCompress(raw.data(), raw.size(), out.data(), &n);
  out.resize(n);
  return out;
}

std::optional<std::string> snappyUncompress(std::string_view compressed) {
  std::string out;
  if (!snappy::Uncompress(compressed.data(), compressed.size(), &out)) return std::nullopt;
  return out;
}

std::string encodeWriteRequest(const prometheus::WriteRequest& req) {
  std::string raw;
  if (!req.SerializeToString(&raw)) throw std::runtime_error("WriteRequest serialization failed");
  return snappyCompress(raw);
}

std::optional<prometheus::WriteRequest> decodeWriteRequest(std::string_view body,
                                                           std::string* error) {
  auto raw = snappyUncompress(body);
  if (!raw) {
    if (error != nullptr) *error = "body is not snappy block format";
    return std::nullopt;
  }
  prometheus::WriteRequest req;
  if (!req.ParseFromString(*raw)) {
    if (error != nullptr) *error = "body is not a WriteRequest protobuf";
    return std::nullopt;
  }
  return req;
}

std::vector<std::pair<std::string, std::string>> remoteWriteHeaders() {
  return {{"Content-Encoding", "snappy"},
          {"Content-Type", "application/x-protobuf"},
          {"X-Prometheus-Remote-Write-Version", "0.1.0"}};
}

HttpResponse postRemoteWrite(std::string_view url, std::string_view compressed_body,
                             Millis timeout) {
  return httpPost(url, compressed_body, remoteWriteHeaders(), timeout);
}

HttpResponse postRemoteWrite(std::string_view url, const prometheus::WriteRequest& req,
                             Millis timeout) {
  return postRemoteWrite(url, encodeWriteRequest(req), timeout);
}

std::string formatDouble(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, end);
}

Labels labelsOf(const prometheus::TimeSeries& ts) {
  Labels out;
  for (const auto& l : ts.labels()) out[l.name()] = l.value();
  return out;
}

std::vector<std::pair<std::string, std::string>> labelPairsOf(const prometheus::TimeSeries& ts) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& l : ts.labels()) out.emplace_back(l.name(), l.value());
  return out;
}

std::string pairsToString(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string out = "[";
  for (const auto& [k, v] : pairs) out += (out.size() > 1 ? ", " : "") + k + "=\"" + v + "\"";
  return out + "]";
}

bool labelsSorted(const prometheus::TimeSeries& ts) {
  for (int i = 1; i < ts.labels_size(); ++i) {
    if (!(ts.labels(i - 1).name() < ts.labels(i).name())) return false;
  }
  return true;
}

std::string labelsToString(const Labels& labels) {
  std::string out = "{";
  for (const auto& [k, v] : labels) {
    if (out.size() > 1) out += ", ";
    out += k + "=\"" + v + "\"";
  }
  return out + "}";
}

// ---------------------------------------------------------------------------------------------
// Prometheus API

double StoredSample::number() const { return std::strtod(value.c_str(), nullptr); }

int64_t promTimestampToMs(const nlohmann::json& ts) {
  return static_cast<int64_t>(std::llround(ts.get<double>() * 1000.0));
}

namespace {
std::string secondsParam(int64_t ms) {
  std::ostringstream ss;
  ss << ms / 1000 << "." << std::setw(3) << std::setfill('0') << (ms % 1000);
  return ss.str();
}
}  // namespace

nlohmann::json PromApi::get(const std::string& path_and_query) const {
  auto res = httpGet(base_ + path_and_query);
  INFO("GET " << base_ << path_and_query);
  REQUIRE_MESSAGE(res.status == 200, res.summary(1000));
  nlohmann::json doc = nlohmann::json::parse(res.body, nullptr, false);
  REQUIRE_MESSAGE(!doc.is_discarded(), "response is not JSON: " << res.summary(1000));
  REQUIRE_MESSAGE(doc.value("status", "") == "success", res.summary(1000));
  return doc;
}

nlohmann::json PromApi::query(std::string_view expr, std::optional<int64_t> time_ms) const {
  std::string q = "/api/v1/query?query=" + urlEncode(expr);
  if (time_ms) q += "&time=" + secondsParam(*time_ms);
  return get(q);
}

nlohmann::json PromApi::series(std::string_view match, int64_t start_ms, int64_t end_ms) const {
  return get("/api/v1/series?match[]=" + urlEncode(match) + "&start=" + secondsParam(start_ms) +
             "&end=" + secondsParam(end_ms));
}

nlohmann::json PromApi::queryExemplars(std::string_view expr, int64_t start_ms,
                                       int64_t end_ms) const {
  return get("/api/v1/query_exemplars?query=" + urlEncode(expr) +
             "&start=" + secondsParam(start_ms) + "&end=" + secondsParam(end_ms));
}

StoredSeries PromApi::rawSamples(std::string_view selector, std::string_view window,
                                 std::optional<int64_t> time_ms) const {
  auto doc = query(std::string(selector) + "[" + std::string(window) + "]",
                   time_ms.value_or(nowMs()));
  StoredSeries out;
  const auto& data = doc.at("data");
  REQUIRE_MESSAGE(data.value("resultType", "") == "matrix", doc.dump());
  for (const auto& r : data.at("result")) {
    Labels labels;
    for (const auto& [k, v] : r.at("metric").items()) labels[k] = v.get<std::string>();
    auto& samples = out[labels];
    if (r.contains("values")) {
      for (const auto& v : r.at("values")) {
        samples.push_back({promTimestampToMs(v.at(0)), v.at(1).get<std::string>()});
      }
    }
  }
  return out;
}

std::map<Labels, double> PromApi::instantValues(std::string_view expr,
                                                std::optional<int64_t> time_ms) const {
  auto doc = query(expr, time_ms.value_or(nowMs()));
  const auto& data = doc.at("data");
  REQUIRE_MESSAGE(data.value("resultType", "") == "vector", doc.dump());
  std::map<Labels, double> out;
  for (const auto& r : data.at("result")) {
    Labels labels;
    for (const auto& [k, v] : r.at("metric").items()) labels[k] = v.get<std::string>();
    out[labels] = std::strtod(r.at("value").at(1).get<std::string>().c_str(), nullptr);
  }
  return out;
}

ExpectedSamples expectedFrom(const prometheus::WriteRequest& req) {
  ExpectedSamples out;
  for (const auto& ts : req.timeseries()) {
    auto& samples = out[labelsOf(ts)];
    for (const auto& s : ts.samples()) samples[s.timestamp()] = s.value();
  }
  return out;
}

bool sameValue(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

StoredDiff diffStored(const ExpectedSamples& must_have, const ExpectedSamples& may_have,
                      const StoredSeries& stored) {
  StoredDiff diff;
  auto at = [](const Labels& l, int64_t ts) {
    return labelsToString(l) + " @" + std::to_string(ts);
  };
  for (const auto& [labels, samples] : must_have) {
    auto it = stored.find(labels);
    for (const auto& [ts, value] : samples) {
      const StoredSample* found = nullptr;
      if (it != stored.end()) {
        for (const auto& s : it->second) {
          if (s.timestamp_ms == ts) found = &s;
        }
      }
      if (found == nullptr) {
        diff.missing.push_back(at(labels, ts) + " = " + formatDouble(value) +
                               (it == stored.end() ? " (series not stored)" : ""));
      }
    }
  }
  for (const auto& [labels, samples] : stored) {
    auto it = may_have.find(labels);
    for (const auto& s : samples) {
      if (it == may_have.end()) {
        diff.unexpected.push_back(at(labels, s.timestamp_ms) + " = " + s.value +
                                  " (no such series was sent)");
        continue;
      }
      auto sit = it->second.find(s.timestamp_ms);
      if (sit == it->second.end()) {
        diff.unexpected.push_back(at(labels, s.timestamp_ms) + " = " + s.value);
      } else if (!sameValue(sit->second, s.number())) {
        diff.wrong.push_back(at(labels, s.timestamp_ms) + ": stored " + s.value + ", sent " +
                             formatDouble(sit->second));
      }
    }
  }
  return diff;
}

std::string StoredDiff::report(size_t max_lines_each) const {
  std::string out;
  auto section = [&](const char* title, const std::vector<std::string>& lines) {
    if (lines.empty()) return;
    out += std::string(title) + " (" + std::to_string(lines.size()) + "):\n";
    for (size_t i = 0; i < lines.size() && i < max_lines_each; ++i) out += "  " + lines[i] + "\n";
    if (lines.size() > max_lines_each) out += "  ...\n";
  };
  section("missing", missing);
  section("stored with a different value", wrong);
  section("stored but never sent", unexpected);
  return out.empty() ? "no differences" : out;
}

// ---------------------------------------------------------------------------------------------
// Exposition parsing

namespace {

// Parses `{a="b",c="d"}` starting at text[pos] == '{'; returns the position after '}'.
size_t parseLabelSet(std::string_view text, size_t pos, Labels& out) {
  ++pos;  // '{'
  while (pos < text.size() && text[pos] != '}') {
    while (pos < text.size() && (text[pos] == ',' || text[pos] == ' ')) ++pos;
    if (pos < text.size() && text[pos] == '}') break;
    size_t eq = text.find('=', pos);
    if (eq == std::string_view::npos) return std::string_view::npos;
    std::string name(text.substr(pos, eq - pos));
    pos = eq + 1;
    if (pos >= text.size() || text[pos] != '"') return std::string_view::npos;
    ++pos;
    std::string value;
    while (pos < text.size() && text[pos] != '"') {
      if (text[pos] == '\\' && pos + 1 < text.size()) {
        char c = text[++pos];
        value += c == 'n' ? '\n' : c;
      } else {
        value += text[pos];
      }
      ++pos;
    }
    ++pos;  // closing quote
    out[name] = value;
  }
  return pos < text.size() ? pos + 1 : std::string_view::npos;
}

}  // namespace

std::vector<std::string> logLines(const Process& process, std::string_view msg) {
  const std::string wanted = "msg=\"" + std::string(msg) + "\"";
  std::vector<std::string> out;
  std::istringstream in(process.logContents());
  for (std::string line; std::getline(in, line);)
    if (line.find(wanted) != std::string::npos) out.push_back(line);
  return out;
}

std::vector<std::string> slowRequestLines(const Process& process) { return logLines(process, "slow write request"); }

std::string logField(const std::string& line, const std::string& key) {
  const auto at = line.find(" " + key + "=");
  if (at == std::string::npos) return "";
  const auto begin = at + key.size() + 2;
  return line.substr(begin, line.find(' ', begin) - begin);
}

std::vector<ExpositionSample> parseExposition(std::string_view text) {
  std::vector<ExpositionSample> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    ExpositionSample s;
    size_t pos = line.find_first_of("{ ");
    if (pos == std::string_view::npos) continue;
    s.name = std::string(line.substr(0, pos));
    if (line[pos] == '{') {
      pos = parseLabelSet(line, pos, s.labels);
      if (pos == std::string_view::npos) continue;
    }
    while (pos < line.size() && line[pos] == ' ') ++pos;
    std::string value(line.substr(pos, line.find(' ', pos) - pos));
    s.value = std::strtod(value.c_str(), nullptr);
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<double> metricValue(std::string_view exposition, std::string_view name,
                                  const Labels& match) {
  std::optional<double> sum;
  for (const auto& s : parseExposition(exposition)) {
    if (s.name != name) continue;
    bool ok = std::all_of(match.begin(), match.end(), [&](const auto& kv) {
      auto it = s.labels.find(kv.first);
      return it != s.labels.end() && it->second == kv.second;
    });
    if (ok) sum = sum.value_or(0) + s.value;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// HttpServer

HttpReply HttpReply::withStatus(int status, std::string body) {
  HttpReply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpReply& HttpReply::header(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServer::Handler& handler)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), handler_(handler) {}

  void start() { read(); }
  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    timer_.cancel();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(std::uint64_t{512} << 20);
    parser_->header_limit(1 << 20);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->onRead(ec);
                     });
  }

  void onRead(beast::error_code ec) {
    if (ec) return close();
    auto& req = parser_->get();
    HttpRequestRecord rec;
    rec.method = std::string(req.method_string());
    rec.target = std::string(req.target());
    for (const auto& f : req) {
      rec.headers.fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    rec.body = std::move(req.body());
    rec.received_at = Clock::now();
    HttpReply reply;
    try {
      reply = handler_(rec);
    } catch (const std::exception& e) {
      reply = HttpReply::withStatus(500, std::string("test handler threw: ") + e.what());
    }
    res_ = {};
    res_.result(static_cast<unsigned>(reply.status));
    res_.version(11);
    for (const auto& [k, v] : reply.headers) res_.set(k, v);
    res_.body() = std::move(reply.body);
    res_.keep_alive(req.keep_alive());
    res_.prepare_payload();
    close_after_write_ = reply.close_after_write;
    if (reply.delay.count() > 0) {
      timer_.expires_after(reply.delay);
      timer_.async_wait([self = shared_from_this()](beast::error_code e) {
        if (e) return self->close();
        self->write();
      });
    } else {
      write();
    }
  }

  void write() {
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->res_.keep_alive() || self->close_after_write_) return self->close();
      self->read();
    });
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  bool close_after_write_ = false;
  const HttpServer::Handler& handler_;
};

}  // namespace

struct HttpServer::Impl {
  Handler handler;  // first: outlives the io_context and the sessions it still holds
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  uint16_t port = 0;
  std::thread thread;
  std::vector<std::weak_ptr<Session>> sessions;  // touched only on the server thread
  bool stopped = false;

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket s) {
      if (ec) return;  // closed by stop()
      auto session = std::make_shared<Session>(std::move(s), handler);
      sessions.push_back(session);
      session->start();
      accept();
    });
  }
};

HttpServer::HttpServer(Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(net::socket_base::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen(net::socket_base::max_listen_connections);
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->ioc.run(); });
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  net::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    for (auto& w : impl->sessions) {
      if (auto s = w.lock()) s->close();
    }
    impl->ioc.stop();
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t HttpServer::port() const { return impl_->port; }
std::string HttpServer::hostPort() const { return "127.0.0.1:" + std::to_string(impl_->port); }
std::string HttpServer::baseUrl() const { return "http://" + hostPort(); }

// ---------------------------------------------------------------------------------------------
// FakeUpstream

FakeUpstream::FakeUpstream() : server_([this](const HttpRequestRecord& r) { return handle(r); }) {}

void FakeUpstream::script(std::vector<HttpReply> replies, HttpReply then) {
  std::lock_guard lock(mu_);
  script_ = std::move(replies);
  script_pos_ = 0;
  then_ = std::move(then);
}

HttpReply FakeUpstream::handle(const HttpRequestRecord& req) {
  Received r;
  r.http = req;
  r.decoded = decodeWriteRequest(req.body, &r.decode_error);
  std::lock_guard lock(mu_);
  received_.push_back(std::move(r));
  if (script_pos_ < script_.size()) return script_[script_pos_++];
  return then_;
}

size_t FakeUpstream::requestCount() const {
  std::lock_guard lock(mu_);
  return received_.size();
}

std::vector<FakeUpstream::Received> FakeUpstream::requests() const {
  std::lock_guard lock(mu_);
  return received_;
}

bool FakeUpstream::waitForRequests(size_t n, Millis timeout) const {
  return waitUntil([&] { return requestCount() >= n; }, timeout, Millis(10));
}

std::vector<prometheus::TimeSeries> FakeUpstream::allSeries() const {
  std::lock_guard lock(mu_);
  std::vector<prometheus::TimeSeries> out;
  for (const auto& r : received_) {
    if (!r.decoded) continue;
    for (const auto& ts : r.decoded->timeseries()) out.push_back(ts);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// ScrapeTarget

ScrapeTarget::ScrapeTarget() : server_([this](const HttpRequestRecord& r) { return handle(r); }) {}

int ScrapeTarget::scrapeCount() const {
  std::lock_guard lock(mu_);
  return scrapes_;
}

std::vector<ScrapeTarget::Served> ScrapeTarget::served() const {
  std::lock_guard lock(mu_);
  return served_;
}

std::string ScrapeTarget::lastBody() const {
  std::lock_guard lock(mu_);
  return last_body_;
}

namespace {

std::string escapeLabelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

HttpReply ScrapeTarget::handle(const HttpRequestRecord& req) {
  if (req.target != "/metrics" && req.target.rfind("/metrics?", 0) != 0) {
    return HttpReply::withStatus(404, "not found");
  }
  std::lock_guard lock(mu_);
  const int n = ++scrapes_;
  const int64_t ts = std::max(nowMs(), last_ts_ + 1);
  last_ts_ = ts;
  const double dn = n;

  std::string body;
  std::string current_family;
  // Label pairs are written in the given (deliberately unsorted) order.
  auto sample = [&](const std::string& name,
                    const std::vector<std::pair<std::string, std::string>>& labels, double value) {
    Served s;
    s.labels["__name__"] = name;
    body += name;
    if (!labels.empty()) {
      body += "{";
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) body += ",";
        body += labels[i].first + "=\"" + escapeLabelValue(labels[i].second) + "\"";
        s.labels[labels[i].first] = labels[i].second;
      }
      body += "}";
    }
    body += " " + formatDouble(value) + " " + std::to_string(ts) + "\n";
    s.value = value;
    s.timestamp_ms = ts;
    s.scrape = n;
    served_.push_back(std::move(s));
  };

  body += "# HELP fixture_requests_total Requests handled by the fixture.\n";
  body += "# TYPE fixture_requests_total counter\n";
  sample("fixture_requests_total", {{"method", "GET"}, {"code", "200"}}, 10 * dn);
  sample("fixture_requests_total", {{"method", "POST"}, {"code", "500"}}, dn);

  body += "# HELP fixture_temperature_celsius A gauge that moves both ways.\n";
  body += "# TYPE fixture_temperature_celsius gauge\n";
  sample("fixture_temperature_celsius", {{"room", "lab"}, {"building", "b\"1\\x"}},
         20.5 + 0.25 * dn);
  sample("fixture_temperature_celsius", {{"room", "cellar"}, {"building", "main"}}, -3.75 * dn);

  body += "# HELP fixture_queue_depth A gauge without labels.\n";
  body += "# TYPE fixture_queue_depth gauge\n";
  sample("fixture_queue_depth", {}, 1000 - dn);

  body += "# HELP fixture_request_duration_seconds A classic histogram.\n";
  body += "# TYPE fixture_request_duration_seconds histogram\n";
  const std::vector<std::pair<std::string, double>> buckets = {
      {"0.1", dn}, {"0.5", 2 * dn}, {"1", 3 * dn}, {"+Inf", 4 * dn}};
  for (const auto& [le, count] : buckets) {
    sample("fixture_request_duration_seconds_bucket",
           {{"zone", "eu"}, {"handler", "/api"}, {"le", le}}, count);
  }
  sample("fixture_request_duration_seconds_sum", {{"zone", "eu"}, {"handler", "/api"}},
         1.25 * dn);
  sample("fixture_request_duration_seconds_count", {{"zone", "eu"}, {"handler", "/api"}}, 4 * dn);

  last_body_ = body;
  HttpReply reply = HttpReply::withStatus(200, std::move(body));
  reply.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  return reply;
}

// ---------------------------------------------------------------------------------------------
// Peers

void waitReady(Process& process, const std::string& ready_url, Millis timeout) {
  HttpResponse last;
  bool ready = waitUntil(
      [&] {
        if (!process.running()) return true;
        last = httpGet(ready_url, Millis(1000));
        return last.status == 200;
      },
      timeout, Millis(50));
  INFO(describe(process));
  REQUIRE_MESSAGE(process.running(), process.name() << " exited during start-up");
  REQUIRE_MESSAGE(ready, process.name() << " not ready after " << timeout.count()
                                        << " ms: GET " << ready_url << " -> " << last.summary());
}

#ifndef CARDINAL_BIN
#define CARDINAL_BIN "cardinal"
#endif

std::string CardinalServer::binary() { return binaryPath("CARDINAL_BIN", CARDINAL_BIN); }

CardinalServer::CardinalServer(const TempDir& dir, std::string upstream_url,
                               std::vector<std::string> extra_flags, std::string name)
    : port_(freePort()), name_(std::move(name)) {
  argv_ = {binary(), "--web.listen-address=127.0.0.1:" + std::to_string(port_),
           "--upstream.url=" + upstream_url};
  argv_.insert(argv_.end(), extra_flags.begin(), extra_flags.end());
  log_file_ = dir.path() / (name_ + ".log");
  working_dir_ = dir.subdir(name_);
  spawn();
}

void CardinalServer::spawn() {
  INFO("binary: " << binary() << " (set CARDINAL_BIN to override)");
  REQUIRE_MESSAGE(::access(argv_[0].c_str(), X_OK) == 0,
                  "cardinal binary not found or not executable: " << argv_[0]);
  process_ = std::make_unique<Process>(name_, argv_, log_file_, working_dir_);
  waitReady(*process_, baseUrl() + "/-/ready", Millis(15000));
}

ExitStatus CardinalServer::stop(Millis timeout) {
  process_->terminate();
  auto status = process_->waitExit(timeout);
  INFO(describe(*process_));
  REQUIRE_MESSAGE(status.has_value(),
                  name_ << " still running " << timeout.count() << " ms after SIGTERM");
  return *status;
}

void CardinalServer::restart() {
  INFO(describe(*process_));
  REQUIRE_MESSAGE(!process_->running(), "restart() of a running " << name_);
  process_.reset();
  spawn();
}

std::string CardinalServer::sanitizerReport() const {
  const std::string log = process_->logContents();
  size_t first = std::string::npos;
  for (const char* marker :
       {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
        "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer", "FATAL: ThreadSanitizer",
        "ThreadSanitizer: reported"}) {
    first = std::min(first, log.find(marker));
  }
  if (first == std::string::npos) return {};
  size_t line_start = log.rfind('\n', first);
  line_start = line_start == std::string::npos ? 0 : line_start + 1;
  constexpr size_t kMaxChars = 6000;
  return log.substr(line_start, kMaxChars);
}

CardinalServer::~CardinalServer() {
  if (!process_ || std::uncaught_exceptions() > 0) return;
  std::string problem;
  if (!process_->running() && !process_->signalled()) {
    problem = "exited by itself during the test (" + process_->exitStatus()->toString() + ")";
  }
  const std::string report = sanitizerReport();
  if (!report.empty()) {
    problem += std::string(problem.empty() ? "" : "; ") + "sanitizer report in its log:\n" + report;
  }
  if (!problem.empty()) {
    FAIL_CHECK(process_->name() << " " << problem << "\n" << describe(*process_, 80));
  }
}

std::string CardinalServer::metricsText() const {
  auto res = httpGet(baseUrl() + "/metrics");
  return res.status == 200 ? res.body : std::string();
}

std::optional<double> CardinalServer::metric(std::string_view name, const Labels& match) const {
  return metricValue(metricsText(), name, match);
}

HttpResponse CardinalServer::reload() const { return httpPost(baseUrl() + "/-/reload", ""); }

std::string PrometheusServer::binary() {
  return binaryPath("PROMETHEUS_BIN", "/usr/bin/prometheus");
}

PrometheusServer::PrometheusServer(const TempDir& dir, Options options)
    : port_(options.port != 0 ? options.port : freePort()) {
  const std::string& name = options.name;
  auto config = dir.writeFile(name + ".yml", options.config_yaml);
  auto data = dir.subdir(name + "-data");
  std::vector<std::string> argv = {binary(), "--config.file=" + config.string(),
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port_)};
  std::vector<std::string> features = options.features;
  if (options.agent) {
    features.insert(features.begin(), "agent");
    argv.push_back("--storage.agent.path=" + data.string());
  } else {
    argv.push_back("--storage.tsdb.path=" + data.string());
    if (options.remote_write_receiver) argv.push_back("--web.enable-remote-write-receiver");
  }
  if (!features.empty()) {
    std::string joined;
    for (const auto& f : features) joined += (joined.empty() ? "" : ",") + f;
    argv.push_back("--enable-feature=" + joined);
  }
  argv.insert(argv.end(), options.extra_flags.begin(), options.extra_flags.end());
  REQUIRE_MESSAGE(::access(argv[0].c_str(), X_OK) == 0,
                  "prometheus not found at " << argv[0]
                                             << " (install the Debian package `prometheus` or set "
                                                "PROMETHEUS_BIN)");
  process_ = std::make_unique<Process>(name, argv, dir.path() / (name + ".log"), dir.subdir(name));
  waitReady(*process_, baseUrl() + "/-/ready", Millis(30000));
}

std::string VmAgent::binary() { return binaryPath("VMAGENT_BIN", "/usr/bin/vmagent"); }

VmAgent::VmAgent(const TempDir& dir, std::string scrape_config_yaml, std::string remote_write_url,
                 std::vector<std::string> extra_flags)
    : port_(freePort()) {
  auto config = dir.writeFile("vmagent.yml", scrape_config_yaml);
  auto data = dir.subdir("vmagent-data");
  std::vector<std::string> argv = {binary(),
                                   "-promscrape.config=" + config.string(),
                                   "-remoteWrite.url=" + remote_write_url,
                                   "-remoteWrite.tmpDataPath=" + data.string(),
                                   "-httpListenAddr=127.0.0.1:" + std::to_string(port_),
                                   "-remoteWrite.flushInterval=1s"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  REQUIRE_MESSAGE(::access(argv[0].c_str(), X_OK) == 0,
                  "vmagent not found at " << argv[0]
                                          << " (install the Debian package `victoria-metrics` "
                                             "or set VMAGENT_BIN)");
  process_ = std::make_unique<Process>("vmagent", argv, dir.path() / "vmagent.log",
                                       dir.subdir("vmagent"));
  waitReady(*process_, baseUrl() + "/health", Millis(30000));
}

std::string scrapeConfigYaml(const std::string& job, const std::string& target_host_port) {
  return "scrape_configs:\n"
         "  - job_name: " + job + "\n"
         "    honor_timestamps: true\n"
         "    scrape_interval: 1s\n"
         "    scrape_timeout: 1s\n"
         "    static_configs:\n"
         "      - targets: [\"" + target_host_port + "\"]\n";
}

std::string orderedRemoteWriteYaml(const std::vector<std::string>& urls, const std::string& extra) {
  std::string out = "remote_write:\n";
  for (const auto& url : urls) {
    out += "  - url: " + url + "\n";
    if (!extra.empty()) out += "    " + extra + "\n";
    out += "    queue_config:\n"
           "      min_shards: 1\n"
           "      max_shards: 1\n"
           "      batch_send_deadline: 500ms\n"
           "      min_backoff: 30ms\n"
           "      max_backoff: 500ms\n";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// ChurnTarget

ChurnTarget::ChurnTarget(Options options)
    : options_(options),
      rng_state_(std::random_device{}() ^ (static_cast<uint64_t>(nowMs()) << 20)),
      server_([this](const HttpRequestRecord& r) { return handle(r); }) {}

int ChurnTarget::scrapeCount() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(scrapes_.size());
}

std::vector<ChurnTarget::Scrape> ChurnTarget::scrapes() const {
  std::lock_guard lock(mu_);
  return scrapes_;
}

std::string ChurnTarget::lastBody() const {
  std::lock_guard lock(mu_);
  return last_body_;
}

HttpReply ChurnTarget::handle(const HttpRequestRecord& req) {
  if (req.target != "/metrics" && req.target.rfind("/metrics?", 0) != 0) {
    return HttpReply::withStatus(404, "not found");
  }
  std::lock_guard lock(mu_);
  Scrape scrape;
  scrape.number = static_cast<int>(scrapes_.size()) + 1;
  scrape.at = Clock::now();
  auto next = [this] {  // splitmix64
    uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  auto uuid = [&] {
    uint64_t hi = next(), lo = next();
    hi = (hi & ~0xF000ULL) | 0x4000ULL;                       // version 4
    lo = (lo & ~(3ULL << 62)) | (2ULL << 62);                 // variant 10
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx",
                  static_cast<unsigned>(hi >> 32), static_cast<unsigned>((hi >> 16) & 0xFFFF),
                  static_cast<unsigned>(hi & 0xFFFF), static_cast<unsigned>(lo >> 48),
                  static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
    return std::string(buf);
  };

  std::string body;
  body += "# HELP orders_total Orders placed, by order (one series per order: the churn).\n";
  body += "# TYPE orders_total counter\n";
  for (int i = 0; i < options_.ids_per_scrape; ++i) {
    std::string id = uuid();
    body += "orders_total{order_id=\"" + id + "\",env=\"prod\"} 1\n";
    scrape.order_ids.push_back(std::move(id));
  }

  body += "# HELP rpc_seconds RPC latency, per pod.\n";
  body += "# TYPE rpc_seconds histogram\n";
  const int n = scrape.number;
  const int spp = std::max(1, options_.scrapes_per_pod);
  const int k = (n - 1) / spp;
  for (int pod = k; pod <= k + 1; ++pod) {
    // Pod `pod` is first served at scrape (pod - 1) * spp + 1 (pod 0 at scrape 1).
    const int first = std::max(1, (pod - 1) * spp + 1);
    const int appearance = n - first + 1;               // 1-based
    const double j = (appearance - 1) % spp + 1;        // restarts after spp appearances
    const std::string name = "pod-" + std::to_string(pod);
    scrape.pods.push_back(name);
    for (size_t b = 0; b < std::size(kBucketBounds); ++b) {
      body += "rpc_seconds_bucket{pod=\"" + name + "\",le=\"" + kBucketBounds[b] + "\"} " +
              formatDouble(static_cast<double>(b + 1) * j) + "\n";
    }
    body += "rpc_seconds_sum{pod=\"" + name + "\"} " + formatDouble(0.5 * j) + "\n";
    body += "rpc_seconds_count{pod=\"" + name + "\"} " + formatDouble(4 * j) + "\n";
  }

  scrapes_.push_back(std::move(scrape));
  last_body_ = body;
  HttpReply reply = HttpReply::withStatus(200, std::move(body));
  reply.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  return reply;
}

// ---------------------------------------------------------------------------------------------
// Raw sockets.

int connectTo(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

KeepAliveClient::KeepAliveClient(uint16_t port, int timeout_s) : port_(port), fd_(connectTo(port)) {
  timeval tv{timeout_s, 0};
  if (fd_ >= 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

KeepAliveClient::~KeepAliveClient() {
  if (fd_ >= 0) ::close(fd_);
}

int KeepAliveClient::post(const prometheus::WriteRequest& req) { return postBody(encodeWriteRequest(req)); }

int KeepAliveClient::postBody(const std::string& body) {
  if (fd_ < 0) return 0;
  std::string msg = "POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                    "\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n"
                    "X-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  if (::send(fd_, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) return 0;
  std::string in;
  char buf[4096];
  size_t header_end = std::string::npos;
  while ((header_end = in.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return 0;
    in.append(buf, static_cast<size_t>(n));
  }
  size_t length = 0;
  std::string lower = in.substr(0, header_end);
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (auto p = lower.find("content-length:"); p != std::string::npos) length = std::stoul(lower.substr(p + 15));
  while (in.size() < header_end + 4 + length) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return 0;
    in.append(buf, static_cast<size_t>(n));
  }
  return std::atoi(in.c_str() + 9);  // "HTTP/1.1 204"
}

}  // namespace cardinal::integration
