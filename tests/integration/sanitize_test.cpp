// Sensitive and id-like label values through Cardinal with NO --rules.file (the built-in
// rules/default.yaml plus the built-in detectors), issue 4's "Done when":
//   1. the seed's eight families and a wider set of secrets (IPv4/IPv6, card numbers, JWTs,
//      GitHub tokens, phone numbers, uuids in paths, an exemplar with an email), all churning
//      over several requests, arrive in a real Prometheus sanitized, normalized and merged,
//      and well-behaved series arrive exactly as sent;
//   2. no raw secret appears anywhere Cardinal writes: its debug log, the bodies it answers
//      with (also for malformed requests and for an upstream 400 that echoes what it got),
//      /metrics, the files under --storage.path, and what it forwards;
//   3. a secret inside a value a normalize rule handles (an email in a query string or a SQL
//      literal, an IP in a URL) ends up normalized away or as an intact hash token.
// Every sensitive value is random per run, so nothing passes by accident of a fixed value.
#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>

#include "harness.h"

namespace cardinal::integration {
namespace {

constexpr int64_t kMinute = 60 * 1000;
const char* const kEnv = "prod";
const char* const kRegion = "us-east";

// ---------------------------------------------------------------------------------------------
// Random values of every sensitive or id-like kind.

std::string base64url(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(buf >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += kAlphabet[(buf << (6 - bits)) & 0x3f];
  return out;
}

class Gen {
 public:
  Gen() : seed_(std::random_device{}()), rng_(seed_) {}
  uint64_t seed() const { return seed_; }

  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::string chars(std::string_view alphabet, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i)
      out += alphabet[static_cast<size_t>(uniform(0, static_cast<int>(alphabet.size()) - 1))];
    return out;
  }
  std::string digits(size_t n) {  // no leading zero
    return std::to_string(uniform(1, 9)) + chars("0123456789", n - 1);
  }
  std::string hex(size_t n) { return chars("0123456789abcdef", n); }
  std::string lower(size_t n) { return chars("abcdefghijklmnopqrstuvwxyz", n); }
  std::string alnum(size_t n) {
    // At least one upper, one lower and one digit, as real tokens have.
    std::string s = chars("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", n);
    if (n >= 3) {
      s[0] = chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1)[0];
      s[1] = chars("abcdefghijklmnopqrstuvwxyz", 1)[0];
      s[2] = chars("0123456789", 1)[0];
    }
    return s;
  }
  std::string uuid() {
    std::string h = hex(32);
    h[12] = '4';
    h[16] = "89ab"[uniform(0, 3)];
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
           "-" + h.substr(20);
  }
  // An id as in the seed's /users/abc123/...: letters then digits.
  std::string pathId() { return lower(3) + digits(4); }
  std::string email() {
    static const char* const kFirst[] = {"ana", "bruno", "carla", "diego", "elisa", "fabio"};
    static const char* const kDomain[] = {"example.com", "mail.example.org", "corp.example.net"};
    return std::string(kFirst[uniform(0, 5)]) + "." + lower(5) + digits(4) + "@" +
           kDomain[uniform(0, 2)];
  }
  std::string ipv4() {
    return "198.51." + std::to_string(uniform(0, 255)) + "." + std::to_string(uniform(1, 254));
  }
  std::string ipv6() { return "2001:db8:" + hex(4) + "::" + std::to_string(uniform(1, 9)) + hex(3); }
  // A Luhn-valid 16-digit Visa number, in 4-digit groups joined by `sep` ("" = contiguous).
  std::string visa(std::string_view sep) {
    std::string d = "4" + chars("0123456789", 14);
    int sum = 0;
    for (size_t i = 0; i < d.size(); ++i) {  // from the right, every second digit doubled
      int v = d[d.size() - 1 - i] - '0';
      if (i % 2 == 0) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
      sum += v;
    }
    d += static_cast<char>('0' + (10 - sum % 10) % 10);
    std::string out;
    for (size_t i = 0; i < 16; i += 4) out += (i ? std::string(sep) : "") + d.substr(i, 4);
    return out;
  }
  // An HS256 JWT whose payload is `extra_payload` bytes longer than a minimal one.
  std::string jwt(size_t extra_payload = 0) {
    std::string payload = R"({"sub":")" + uuid() + R"(","iat":)" + digits(10) +
                          R"(,"name":")" + lower(6 + extra_payload) + R"("})";
    return base64url(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url(payload) + "." +
           chars("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 43);
  }
  std::string githubToken() { return "ghp_" + alnum(36); }
  std::string phoneBr() { return "+55119" + digits(8); }
  std::string phoneUs() { return "+1 (415) 555-" + chars("0123456789", 4); }

 private:
  uint64_t seed_;
  std::mt19937_64 rng_;
};

// ISO-8601 with microseconds of a millisecond timestamp, plus `micros` (0-999).
std::string isoTimestamp(int64_t ms, int micros) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03d%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000), micros);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// What must never be stored or written: every raw value the test sent, by kind.

struct Secret {
  std::string kind;  // email, ipv4, ipv6, card, jwt, token, phone, uuid, path id, sql literal, ...
  std::string value;
};

class SecretBook {
 public:
  // Returns `value` so calls can sit inside label lists.
  const std::string& add(std::string kind, const std::string& value) {
    if (seen_.insert(value).second) secrets_.push_back({std::move(kind), value});
    return value;
  }
  const std::vector<Secret>& all() const { return secrets_; }
  static bool isNetworkKind(std::string_view kind) { return kind == "ipv4" || kind == "ipv6"; }

 private:
  std::vector<Secret> secrets_;
  std::set<std::string> seen_;
};

// Cardinal's hash tokens are "h:" + 16 lower-case hex digits.
const std::regex kTokenRe("h:[0-9a-f]{16}");
const std::regex kWholeTokenRe("^h:[0-9a-f]{16}$");
bool isToken(const std::string& v) { return std::regex_match(v, kWholeTokenRe); }

// The value with every well-formed hash token replaced by "{h}", so that digit runs inside a
// random token are not mistaken for leaked numbers (and a leak cannot hide in a token).
std::string stripTokens(const std::string& v) { return std::regex_replace(v, kTokenRe, "{h}"); }

// Shapes no stored label value may have (checked on stripTokens(value)), whatever was sent.
std::vector<std::string> shapeProblems(const std::string& name, const std::string& raw_value) {
  static const std::vector<std::pair<std::string, std::regex>> kShapes = {
      {"an email", std::regex("@")},
      {"an IPv4 address", std::regex(R"((^|[^0-9.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}($|[^0-9.]))")},
      {"an IPv6 address", std::regex(R"([0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)")},
      {"a card number", std::regex(R"(\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{1,4})")},
      {"a JWT", std::regex("eyJ")},
      {"a GitHub token", std::regex("gh[pousr]_")},
      {"a phone number", std::regex(R"(\+\d[\d ()-]{6,})")},
      {"a uuid", std::regex(R"([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})")},
      {"an ISO timestamp", std::regex(R"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2})")},
      {"a long number (epoch timestamp, id, SQL literal)", std::regex(R"(\d{6,})")},
  };
  std::vector<std::string> out;
  if (name == "__name__") return out;
  if (name == "instance" && raw_value == "10.0.0.7:8080") return out;  // protected, sent so
  const std::string v = stripTokens(raw_value);
  for (const auto& [what, re] : kShapes)
    if (std::regex_search(v, re)) out.push_back(name + "=\"" + raw_value + "\" looks like " + what);
  if (v.find("h:") != std::string::npos)
    out.push_back(name + "=\"" + raw_value + "\" holds a malformed hash token");
  if (name == "query" && (std::regex_search(v, std::regex(R"(\d)")) || v.find('\'') != std::string::npos))
    out.push_back("query=\"" + raw_value + "\" keeps a SQL literal");
  if (name == "path") {
    static const std::regex kSegment(R"(^([a-z]+|v\d+|\{[a-z]+\})$)");
    std::stringstream ss(v);
    std::string seg;
    std::getline(ss, seg, '/');  // before the leading '/'
    while (std::getline(ss, seg, '/'))
      if (!std::regex_match(seg, kSegment))
        out.push_back("path=\"" + raw_value + "\" keeps the id-like segment \"" + seg + "\"");
  }
  return out;
}

// Every raw secret (substring search, tokens stripped) found in `value` of label `name`.
std::vector<std::string> leaksIn(const SecretBook& book, const std::string& where,
                                 const std::string& name, const std::string& value) {
  std::vector<std::string> out;
  const std::string v = stripTokens(value);
  for (const auto& s : book.all()) {
    if (name == "instance" && SecretBook::isNetworkKind(s.kind)) continue;  // protected label
    if (v.find(s.value) != std::string::npos)
      out.push_back(where + ": " + name + "=\"" + value + "\" contains the " + s.kind + " \"" +
                    s.value + "\"");
  }
  return out;
}

Labels labelsFromJson(const nlohmann::json& obj) {
  Labels out;
  for (const auto& [k, v] : obj.items()) out[k] = v.get<std::string>();
  return out;
}

std::string join(const std::vector<std::string>& lines, size_t max = 40) {
  std::string out;
  for (size_t i = 0; i < lines.size() && i < max; ++i) out += lines[i] + "\n";
  if (lines.size() > max) out += "... and " + std::to_string(lines.size() - max) + " more\n";
  return out;
}

std::vector<StoredSample> byTime(std::vector<StoredSample> s) {
  std::sort(s.begin(), s.end(), [](const StoredSample& a, const StoredSample& b) {
    return a.timestamp_ms < b.timestamp_ms;
  });
  return s;
}

Labels withEnv(Labels l) {
  l["env"] = kEnv;
  l["region"] = kRegion;
  return l;
}

// ---------------------------------------------------------------------------------------------
// Case 1: the seed's families and a wider set of secrets, churning over several requests.

constexpr int kRequests = 6;
constexpr int64_t kRequestGapMs = 2000;  // 2 x --aggregation.interval: an emission in between

// A merged output (labels after the default rules) and what its last emitted value must be.
struct MergedOutput {
  Labels labels;
  bool counter = false;
  // Input series -> its last value (gauges) or its contribution (counters: first value, then
  // increases, a decrease being a reset). The output's final value is their sum or mean.
  std::map<std::string, double> inputs;
  bool average = false;
  double expected() const {
    double sum = 0;
    for (const auto& [k, v] : inputs) sum += v;
    return average && !inputs.empty() ? sum / static_cast<double>(inputs.size()) : sum;
  }
};

struct Case1Sender {
  Gen& gen;
  SecretBook& book;
  std::map<std::string, MergedOutput> merged;  // by labelsToString(output labels)
  // Hashed, unmerged families: metric -> hashed label -> distinct raw values sent.
  std::map<std::string, std::pair<std::string, std::set<std::string>>> hashed;
  ExpectedSamples well_behaved;
  struct SentExemplar {
    std::string trace_id;
    std::string email;
    double value;
    int64_t ts;
  };
  std::vector<SentExemplar> exemplars;
  // Inputs that persist across requests, with their previous values (counter contributions).
  std::map<std::string, double> last_counter_value;
  std::string persistent_user, persistent_order, persistent_email, persistent_session;

  Case1Sender(Gen& g, SecretBook& b) : gen(g), book(b) {
    persistent_user = book.add("uuid", gen.uuid());
    persistent_order = book.add("uuid", gen.uuid());
    persistent_email = book.add("email", "joao.silva." + gen.digits(5) + "@example.com");
    persistent_session = book.add("uuid", gen.uuid());
  }

  MergedOutput& output(const Labels& labels, bool counter, bool average = false) {
    auto& o = merged[labelsToString(labels)];
    o.labels = labels;
    o.counter = counter;
    o.average = average;
    return o;
  }
  // Records a counter input's sample: its contribution grows by the increase (or the whole
  // value after a reset or on its first sample).
  void counterInput(MergedOutput& o, const std::string& input, double v) {
    auto it = last_counter_value.find(input);
    double add = (it == last_counter_value.end() || v < it->second) ? v : v - it->second;
    last_counter_value[input] = v;
    o.inputs[input] += add;
  }

  void addMergedGauge(prometheus::WriteRequest& req, const std::string& metric,
                      std::pair<std::string, std::string> label, const Labels& out_labels,
                      double v, int64_t t, bool average = false) {
    addSeries(req, {{"__name__", metric}, label, {"env", kEnv}, {"region", kRegion}}, {{v, t}});
    output(out_labels, false, average).inputs[metric + "/" + label.second] = v;
  }
  void addHashed(prometheus::WriteRequest& req, const std::string& metric,
                 const std::string& label, const std::string& kind, const std::string& value,
                 double v, int64_t t) {
    book.add(kind, value);
    addSeries(req, {{"__name__", metric}, {label, value}, {"env", kEnv}, {"region", kRegion}},
              {{v, t}});
    auto& h = hashed[metric];
    h.first = label;
    h.second.insert(value);
  }
  void addWellBehaved(prometheus::WriteRequest& req, const Labels& labels, double v, int64_t t) {
    // Sent in a non-sorted order on purpose (name last).
    std::vector<std::pair<std::string, std::string>> pairs;
    for (const auto& [k, val] : labels)
      if (k != "__name__") pairs.emplace_back(k, val);
    pairs.emplace_back("__name__", labels.at("__name__"));
    addSeries(req, pairs, {{v, t}});
    well_behaved[labels][t] = v;
  }

  prometheus::WriteRequest request(int i, int64_t t) {
    prometheus::WriteRequest req;
    const double k = i + 1;

    // --- The seed's eight families, ids churning on every request.
    const Labels base = withEnv({});
    auto named = [&](const std::string& metric, Labels extra = {}) {
      Labels l = base;
      l["__name__"] = metric;
      for (auto& [a, b] : extra) l[a] = b;
      return l;
    };
    // checkout_request_latency_seconds{user_id}: a persistent user plus two new ones; the
    // output is the average of every live input's last value.
    addMergedGauge(req, "checkout_request_latency_seconds", {"user_id", persistent_user},
                   named("checkout_request_latency_seconds"), 0.25 + 0.0625 * k, t, true);
    for (int j = 0; j < 2; ++j)
      addMergedGauge(req, "checkout_request_latency_seconds", {"user_id", book.add("uuid", gen.uuid())},
                     named("checkout_request_latency_seconds"), 0.125 * gen.uniform(1, 7), t, true);
    // order_payment_failures_total{order_id}: a persistent order counting up and resetting
    // once (1, 2, 3, 1, 2, 3), and three new orders per request with value 1 or 2.
    {
      auto& o = output(named("order_payment_failures_total"), true);
      const double v = (i % 3) + 1;
      addSeries(req, {{"__name__", "order_payment_failures_total"}, {"order_id", persistent_order},
                      {"env", kEnv}, {"region", kRegion}}, {{v, t}});
      counterInput(o, persistent_order, v);
      for (int j = 0; j < 3; ++j) {
        const std::string id = book.add("uuid", gen.uuid());
        const double w = gen.uniform(1, 2);
        addSeries(req, {{"__name__", "order_payment_failures_total"}, {"order_id", id},
                        {"env", kEnv}, {"region", kRegion}}, {{w, t}});
        counterInput(o, id, w);
      }
    }
    // process_cpu_percent{pid}: new pids every request (sum of live inputs).
    for (int j = 0; j < 2; ++j) {
      const std::string pid = book.add("pid", gen.digits(7));
      addMergedGauge(req, "process_cpu_percent", {"pid", pid}, named("process_cpu_percent"),
                     0.5 * gen.uniform(1, 60), t);
    }
    // temp_file_size_bytes{file_path=/tmp/upload/session_<epoch ms>/file.txt}
    for (int j = 0; j < 2; ++j) {
      const std::string epoch = book.add("epoch timestamp", std::to_string(t - 1000 * j - gen.uniform(0, 999)));
      addMergedGauge(req, "temp_file_size_bytes",
                     {"file_path", "/tmp/upload/session_" + epoch + "/file.txt"},
                     named("temp_file_size_bytes", {{"file_path", "/tmp/upload/session_{ts}/file.txt"}}),
                     1024.0 * gen.uniform(1, 20), t);
    }
    // auth_event_count{timestamp=ISO}
    for (int j = 0; j < 2; ++j) {
      const std::string iso = book.add("ISO timestamp", isoTimestamp(t - 1000 * j, gen.uniform(0, 999)));
      addMergedGauge(req, "auth_event_count", {"timestamp", iso}, named("auth_event_count"),
                     gen.uniform(1, 9), t);
    }
    // user_login_total{email}: hashed, one series per address (a persistent one plus a new
    // one per request).
    addHashed(req, "user_login_total", "email", "email", persistent_email, 3 * k, t);
    addHashed(req, "user_login_total", "email", "email", gen.email(), 1, t);
    // api_request_count{path=/users/<id>/orders/<n>} and a path with a uuid and a query string.
    for (int j = 0; j < 2; ++j) {
      const std::string user = book.add("path id", gen.pathId());
      const std::string order = book.add("path id", gen.digits(6));
      addMergedGauge(req, "api_request_count", {"path", "/users/" + user + "/orders/" + order},
                     named("api_request_count", {{"path", "/users/{id}/orders/{id}"}}),
                     gen.uniform(1, 30), t);
    }
    {
      const std::string id = book.add("uuid", gen.uuid());
      const std::string q = book.add("query string value", gen.lower(4) + gen.digits(6));
      addMergedGauge(req, "api_request_count",
                     {"path", "/api/v1/orders/" + id + "/items?cursor=" + q},
                     named("api_request_count", {{"path", "/api/v1/orders/{id}/items"}}),
                     gen.uniform(1, 30), t);
    }
    // db_query_duration_seconds{query}: three statements, literals churning.
    {
      const std::string a = book.add("SQL literal", gen.digits(7));
      addMergedGauge(req, "db_query_duration_seconds",
                     {"query", "SELECT * FROM orders WHERE id = " + a},
                     named("db_query_duration_seconds", {{"query", "SELECT * FROM orders WHERE id = ?"}}),
                     0.015625 * gen.uniform(1, 16), t, true);
      const std::string b = book.add("SQL literal", "cust-" + gen.lower(8));
      const std::string c = book.add("SQL literal", gen.digits(6));
      addMergedGauge(req, "db_query_duration_seconds",
                     {"query", "SELECT name FROM customers WHERE name = '" + b + "' AND age > " + c},
                     named("db_query_duration_seconds",
                           {{"query", "SELECT name FROM customers WHERE name = ? AND age > ?"}}),
                     0.015625 * gen.uniform(1, 16), t, true);
      const std::string d = book.add("SQL literal", gen.digits(6));
      const std::string e = book.add("SQL literal", gen.digits(8));
      addMergedGauge(req, "db_query_duration_seconds",
                     {"query", "SELECT * FROM items WHERE id IN (" + d + ", " + e + ", 7)"},
                     named("db_query_duration_seconds", {{"query", "SELECT * FROM items WHERE id IN (?)"}}),
                     0.015625 * gen.uniform(1, 16), t, true);
    }

    // --- The wider set: secrets in labels no rule names, only the detectors see them.
    addHashed(req, "client_connections_total", "client_ip", "ipv4", gen.ipv4(), k, t);
    addHashed(req, "client_connections_total", "client_ip", "ipv6", gen.ipv6(), k, t);
    addHashed(req, "client_connections_total", "client_ip", "ipv4", "10.0.0.7", k, t);  // = instance's IP
    addHashed(req, "client_connections_total", "client_ip", "ipv6", "[2001:db8::" + gen.hex(3) + "]:443", k, t);
    addHashed(req, "payments_total", "card", "card", "4111 1111 1111 1111", k, t);
    addHashed(req, "payments_total", "card", "card", gen.visa(i % 2 ? "-" : ""), 1, t);
    addHashed(req, "auth_requests_total", "auth", "jwt", gen.jwt(), 1, t);
    addHashed(req, "api_tokens_in_use", "token", "token", gen.githubToken(), 1, t);
    addHashed(req, "sms_sent_total", "phone", "phone", "+5511987654321", k, t);
    addHashed(req, "sms_sent_total", "phone", "phone", gen.phoneBr(), 1, t);
    addHashed(req, "sms_sent_total", "phone", "phone", gen.phoneUs(), 1, t);
    // A classic histogram whose session_id churns: merged per le into monotonic counters.
    {
      for (const std::string& session : {persistent_session, book.add("uuid", gen.uuid())}) {
        // Bucket counts 1, 2, 3 (le order) times k for the persistent session (k = 1, 2, ...),
        // times 1 for each new one.
        const double m = session == persistent_session ? k : 1;
        int b = 0;
        for (const char* le : {"0.1", "0.5", "+Inf"}) {
          ++b;
          addSeries(req, {{"__name__", "rpc_duration_seconds_bucket"}, {"le", le}, {"session_id", session},
                          {"env", kEnv}, {"region", kRegion}}, {{m * b, t}});
          counterInput(output(named("rpc_duration_seconds_bucket", {{"le", le}}), true), session + le, m * b);
        }
        addSeries(req, {{"__name__", "rpc_duration_seconds_sum"}, {"session_id", session}, {"env", kEnv},
                        {"region", kRegion}}, {{0.5 * m, t}});
        counterInput(output(named("rpc_duration_seconds_sum"), true), session + "sum", 0.5 * m);
        addSeries(req, {{"__name__", "rpc_duration_seconds_count"}, {"session_id", session}, {"env", kEnv},
                        {"region", kRegion}}, {{3 * m, t}});
        counterInput(output(named("rpc_duration_seconds_count"), true), session + "count", 3 * m);
      }
    }

    // --- Well-behaved series: stored exactly as sent.
    const Labels web = {{"__name__", "http_requests_total"}, {"code", "404"}, {"env", kEnv},
                        {"handler", "/api/v1/users"}, {"instance", "10.0.0.7:8080"}, {"job", "api"},
                        {"method", "GET"}, {"region", kRegion}, {"route", "/users/{id}"},
                        {"status", "404"}, {"version", "1.2.3"}};
    addWellBehaved(req, web, 10 * k, t);
    Labels ok = web;
    ok["code"] = ok["status"] = "200";
    ok["method"] = "POST";
    addWellBehaved(req, ok, 100 * k, t);
    {
      // The exemplar: a trace id and an email (the persistent one on even requests).
      auto* ts = req.mutable_timeseries(req.timeseries_size() - 1);
      SentExemplar se{gen.hex(32), i % 2 == 0 ? persistent_email : book.add("email", gen.email()),
                      0.25 * k, t};
      auto* ex = ts->add_exemplars();
      auto* l = ex->add_labels();
      l->set_name("trace_id");
      l->set_value(se.trace_id);
      l = ex->add_labels();
      l->set_name("user_email");
      l->set_value(se.email);
      ex->set_value(se.value);
      ex->set_timestamp(se.ts);
      exemplars.push_back(se);
    }
    for (const char* le : {"0.005", "0.1", "+Inf"}) {
      Labels h = {{"__name__", "http_request_duration_seconds_bucket"}, {"env", kEnv}, {"instance", "10.0.0.7:8080"},
                  {"job", "api"}, {"le", le}, {"method", "GET"}, {"region", kRegion}, {"route", "/users/{id}"}};
      addWellBehaved(req, h, std::string(le) == "0.005" ? 2 * k : std::string(le) == "0.1" ? 5 * k : 7 * k, t);
    }
    addWellBehaved(req, {{"__name__", "http_request_duration_seconds_sum"}, {"env", kEnv}, {"instance", "10.0.0.7:8080"},
                         {"job", "api"}, {"method", "GET"}, {"region", kRegion}, {"route", "/users/{id}"}},
                   0.375 * k, t);
    addWellBehaved(req, {{"__name__", "http_request_duration_seconds_count"}, {"env", kEnv}, {"instance", "10.0.0.7:8080"},
                         {"job", "api"}, {"method", "GET"}, {"region", kRegion}, {"route", "/users/{id}"}},
                   7 * k, t);
    addWellBehaved(req, {{"__name__", "rpc_latency_seconds"}, {"env", kEnv}, {"job", "api"}, {"quantile", "0.99"},
                         {"region", kRegion}},
                   0.5 + 0.125 * k, t);
    addWellBehaved(req, {{"__name__", "app_build_info"}, {"env", kEnv}, {"instance", "10.0.0.7:8080"}, {"job", "api"},
                         {"region", kRegion}, {"version", "1.2.3"}},
                   1, t);
    return req;
  }
};

// Every label of every stored series and exemplar: shape problems and raw secrets.
std::vector<std::string> storedProblems(const SecretBook& book, const nlohmann::json& series,
                                        const nlohmann::json& exemplars,
                                        const std::set<std::string>& sent_trace_ids) {
  std::vector<std::string> out;
  auto check = [&](const std::string& where, const std::string& name, const std::string& value) {
    for (auto& p : shapeProblems(name, value)) out.push_back(where + ": " + p);
    for (auto& p : leaksIn(book, where, name, value)) out.push_back(p);
  };
  for (const auto& s : series) {
    const Labels labels = labelsFromJson(s);
    for (const auto& [name, value] : labels) check("series " + labelsToString(labels), name, value);
  }
  for (const auto& e : exemplars) {
    const Labels series_labels = labelsFromJson(e.at("seriesLabels"));
    for (const auto& ex : e.at("exemplars")) {
      for (const auto& [name, value] : labelsFromJson(ex.at("labels"))) {
        // The trace id is what exemplars are for: kept (and compared exactly below).
        if (name == "trace_id" && sent_trace_ids.count(value)) continue;
        check("exemplar of " + labelsToString(series_labels), name, value);
      }
    }
  }
  return out;
}

TEST_CASE("sanitize: no rule file: the seed's families arrive sanitized, normalized and merged in "
          "Prometheus") {
  const auto started = Clock::now();
  Gen gen;
  INFO("random seed " << gen.seed());
  TempDir dir("cardinal-it-sanitize");
  PrometheusServer::Options opts;
  opts.features = {"exemplar-storage"};
  PrometheusServer prom(dir, opts);
  CardinalServer cardinal(dir, prom.writeUrl(), {"--aggregation.interval=1s"});
  INFO(describe(cardinal.process()));
  INFO(describe(prom.process()));
  const PromApi api = prom.api();

  SecretBook book;
  Case1Sender sender(gen, book);
  const int64_t start = nowMs();
  int64_t last_t = 0;
  for (int i = 0; i < kRequests; ++i) {
    if (i) std::this_thread::sleep_until(started + Millis(i * kRequestGapMs));
    const int64_t t = std::max(nowMs(), last_t + 1);
    last_t = t;
    auto res = postRemoteWrite(cardinal.writeUrl(), sender.request(i, t));
    REQUIRE_MESSAGE(res.status == 204, "request " << i << ": " << res.summary());
  }
  INFO("sent " << book.all().size() << " distinct sensitive or id-like values");

  // Merged outputs are emitted every second, stamped with the newest input's timestamp: wait
  // until every one holds the last request's sample.
  std::string merged_re;
  std::set<std::string> merged_names;
  for (const auto& [key, o] : sender.merged) merged_names.insert(o.labels.at("__name__"));
  for (const auto& n : merged_names) merged_re += (merged_re.empty() ? "" : "|") + n;
  const std::string merged_selector = "{__name__=~\"" + merged_re + "\"}";
  StoredSeries merged_stored;
  const bool all_emitted = waitUntil(
      [&] {
        merged_stored = api.rawSamples(merged_selector, "5m");
        for (const auto& [key, o] : sender.merged) {
          auto it = merged_stored.find(o.labels);
          if (it == merged_stored.end() || it->second.empty() ||
              byTime(it->second).back().timestamp_ms != last_t)
            return false;
        }
        return true;
      },
      Millis(15000), Millis(250));

  // 1. Nothing sensitive or id-like stored anywhere: series labels and exemplar labels.
  const auto series = api.series("{__name__=~\".+\"}", start - kMinute, nowMs() + kMinute).at("data");
  const auto exemplars =
      api.queryExemplars("{__name__=~\".+\"}", start - kMinute, nowMs() + kMinute).at("data");
  std::set<std::string> trace_ids;
  for (const auto& e : sender.exemplars) trace_ids.insert(e.trace_id);
  {
    const auto problems = storedProblems(book, series, exemplars, trace_ids);
    CHECK_MESSAGE(problems.empty(), problems.size() << " stored label values leak what was sent:\n"
                                                    << join(problems));
  }

  // Stored series by name.
  std::map<std::string, std::set<Labels>> by_name;
  for (const auto& s : series) {
    Labels l = labelsFromJson(s);
    by_name[l.at("__name__")].insert(l);
  }
  std::string stored_list;
  for (const auto& [name, set] : by_name)
    for (const auto& l : set) stored_list += labelsToString(l) + "\n";
  INFO("stored series:\n" << stored_list.substr(0, 8000));

  // 2. Series that normalized to the same labels are merged: exactly the expected outputs.
  std::map<std::string, std::set<Labels>> want_merged;
  for (const auto& [key, o] : sender.merged) want_merged[o.labels.at("__name__")].insert(o.labels);
  for (const auto& [name, want] : want_merged) {
    CAPTURE(name);
    CHECK_MESSAGE(by_name[name] == want, "stored " << name << " series differ from the merged outputs");
  }
  CHECK_MESSAGE(all_emitted, "not every merged output got the last request's sample within 15 s");

  // Merged values: counters never decrease and end at the sum of their inputs' contributions;
  // gauges end at the sum (or average) of their live inputs' last values.
  for (const auto& [key, o] : sender.merged) {
    CAPTURE(key);
    auto it = merged_stored.find(o.labels);
    if (it == merged_stored.end() || it->second.empty()) continue;  // reported above
    const auto samples = byTime(it->second);
    CHECK_MESSAGE(samples.back().number() == doctest::Approx(o.expected()).epsilon(1e-9),
                  "last merged value " << samples.back().value << ", want " << o.expected());
    if (o.counter) {
      for (size_t j = 1; j < samples.size(); ++j)
        CHECK_MESSAGE(samples[j].number() >= samples[j - 1].number(),
                      "merged counter decreased at " << samples[j].timestamp_ms << ": "
                                                     << samples[j - 1].value << " -> " << samples[j].value);
    }
  }
  for (const char* counter : {"order_payment_failures_total", "rpc_duration_seconds_bucket",
                              "rpc_duration_seconds_sum", "rpc_duration_seconds_count"}) {
    const auto resets = api.instantValues(std::string("resets(") + counter + "[5m])");
    CHECK_MESSAGE(!resets.empty(), "no " << counter << " series for resets()");
    for (const auto& [labels, v] : resets)
      CHECK_MESSAGE(v == 0, "resets(" << counter << labelsToString(labels) << "[5m]) is " << v);
  }
  {
    // Buckets grow with le at the last emission.
    auto at = [&](const char* le) {
      Labels l = withEnv({{"__name__", "rpc_duration_seconds_bucket"}, {"le", le}});
      auto it = merged_stored.find(l);
      return it == merged_stored.end() || it->second.empty() ? -1.0 : byTime(it->second).back().number();
    };
    CHECK(at("0.1") <= at("0.5"));
    CHECK(at("0.5") <= at("+Inf"));
  }

  // 3. Hashed families: one series per distinct raw value (the same value always maps to the
  // same token), every hashed value a token, no other label touched.
  for (const auto& [metric, hashed] : sender.hashed) {
    const auto& [label, values] = hashed;
    CAPTURE(metric);
    const auto& stored = by_name[metric];
    CHECK_MESSAGE(stored.size() == values.size(),
                  stored.size() << " stored series, " << values.size() << " distinct " << label << " values sent");
    std::set<std::string> tokens;
    for (const auto& l : stored) {
      CHECK_MESSAGE(l.size() == 4, labelsToString(l));
      CHECK(l.count("env"));
      CHECK(l.count("region"));
      auto it = l.find(label);
      REQUIRE_MESSAGE(it != l.end(), labelsToString(l));
      CHECK_MESSAGE(isToken(it->second), labelsToString(l) << ": " << label << " is not a hash token");
      tokens.insert(it->second);
    }
    CHECK(tokens.size() == stored.size());
  }
  // The persistent email's series has a sample from every request (stable token), and the
  // exemplars carry the same token for it.
  std::string persistent_token;
  {
    auto logins = api.rawSamples("user_login_total", "5m");
    for (const auto& [l, s] : logins)
      if (s.size() == static_cast<size_t>(kRequests)) persistent_token = l.at("email");
    CHECK_MESSAGE(!persistent_token.empty(),
                  "no user_login_total series holds all " << kRequests << " samples of the persistent email");
  }

  // 4. Exemplars: the trace id kept, the email a token (the same token as in the series).
  {
    const Labels ex_series = [&] {
      for (const auto& [l, v] : sender.well_behaved)
        if (l.at("__name__") == "http_requests_total" && l.at("code") == "200") return l;
      return Labels{};
    }();
    const nlohmann::json* found = nullptr;
    for (const auto& e : exemplars)
      if (labelsFromJson(e.at("seriesLabels")) == ex_series) found = &e;
    REQUIRE_MESSAGE(found, "no exemplars stored for " << labelsToString(ex_series) << ": " << exemplars.dump().substr(0, 3000));
    const auto& stored_ex = found->at("exemplars");
    CHECK(stored_ex.size() == sender.exemplars.size());
    for (const auto& se : sender.exemplars) {
      CAPTURE(se.trace_id);
      const nlohmann::json* match = nullptr;
      for (const auto& ex : stored_ex)
        if (labelsFromJson(ex.at("labels")).count("trace_id") &&
            labelsFromJson(ex.at("labels")).at("trace_id") == se.trace_id)
          match = &ex;
      REQUIRE_MESSAGE(match, "exemplar with trace_id " << se.trace_id << " not stored: " << stored_ex.dump().substr(0, 2000));
      const Labels l = labelsFromJson(match->at("labels"));
      CHECK(l.size() == 2);
      REQUIRE(l.count("user_email"));
      CHECK_MESSAGE(isToken(l.at("user_email")), "exemplar user_email=" << l.at("user_email"));
      if (se.email == sender.persistent_email && !persistent_token.empty())
        CHECK_MESSAGE(l.at("user_email") == persistent_token,
                      "the same email hashes to " << l.at("user_email") << " in an exemplar and to "
                                                  << persistent_token << " in user_login_total");
      CHECK(promTimestampToMs(match->at("timestamp")) == se.ts);
      CHECK(std::stod(match->at("value").get<std::string>()) == se.value);
    }
  }

  // 5. Well-behaved series: exactly the labels and values sent.
  {
    std::string re;
    std::set<std::string> names;
    for (const auto& [l, s] : sender.well_behaved) names.insert(l.at("__name__"));
    for (const auto& n : names) re += (re.empty() ? "" : "|") + n;
    auto stored = api.rawSamples("{__name__=~\"" + re + "\"}", "5m");
    StoredDiff diff = diffStored(sender.well_behaved, sender.well_behaved, stored);
    CHECK_MESSAGE(diff.empty(), "well-behaved series in Prometheus:\n" << diff.report());
  }

  // 6. Nothing else stored, nothing rejected.
  {
    std::set<std::string> known = merged_names;
    for (const auto& [m, h] : sender.hashed) known.insert(m);
    for (const auto& [l, s] : sender.well_behaved) known.insert(l.at("__name__"));
    for (const auto& [name, set] : by_name)
      CHECK_MESSAGE(known.count(name), "stored a family never sent: " << name);
  }
  const std::string metrics = cardinal.metricsText();
  INFO("cardinal /metrics:\n" << metrics.substr(0, 8000));
  CHECK(metricValue(metrics, "cardinal_upstream_requests_total", {{"outcome", "rejected"}}).value_or(0) == 0);
  CHECK(metricValue(metrics, "cardinal_merged_requests_total", {{"outcome", "rejected"}}).value_or(0) == 0);
  CHECK(metricValue(metrics, "cardinal_merged_requests_total", {{"outcome", "dropped_queue_full"}}).value_or(0) == 0);
  CHECK(metricValue(metrics, "cardinal_merged_requests_total", {{"outcome", "delivered"}}).value_or(0) >= kRequests);
  CHECK(metricValue(metrics, "cardinal_upstream_requests_total", {{"outcome", "delivered"}}).value_or(0) >= kRequests);
  for (const char* result : {"out_of_order", "over_cap", "refused", "duplicate"})
    CHECK_MESSAGE(metricValue(metrics, "cardinal_merge_samples_total", {{"result", result}}).value_or(0) == 0,
                  "cardinal_merge_samples_total{result=\"" << result << "\"}");
  CHECK(metricValue(metrics, "cardinal_sanitize_exemplar_labels_redacted_total").value_or(0) >= kRequests);

  const auto took = std::chrono::duration_cast<Millis>(Clock::now() - started).count();
  CHECK_MESSAGE(took < 60000, "took " << took << " ms");
}


// ---------------------------------------------------------------------------------------------
// Case 2: no raw secret anywhere Cardinal writes.

// A remote-write upstream that records what it gets and answers 204, or 400/500 with a body
// echoing the labels it received (as Prometheus quotes series in its errors).
class EchoUpstream {
 public:
  enum Mode { kAccept, kReject400, kFail500 };
  EchoUpstream() : server_([this](const HttpRequestRecord& r) { return handle(r); }) {}
  void setMode(Mode m) {
    std::lock_guard lock(mu_);
    mode_ = m;
  }
  std::string writeUrl() const { return server_.baseUrl() + "/api/v1/write"; }
  std::vector<prometheus::WriteRequest> received() const {
    std::lock_guard lock(mu_);
    return received_;
  }
  size_t undecodable() const {
    std::lock_guard lock(mu_);
    return undecodable_;
  }
  std::vector<std::string> echoes() const {
    std::lock_guard lock(mu_);
    return echoes_;
  }

 private:
  HttpReply handle(const HttpRequestRecord& r) {
    std::lock_guard lock(mu_);
    auto req = decodeWriteRequest(r.body);
    if (!req) {
      ++undecodable_;
      return HttpReply::withStatus(400, "cannot decode");
    }
    received_.push_back(*req);
    if (mode_ == kAccept) return HttpReply::withStatus(204);
    std::string echo = "rejected: ";
    for (const auto& ts : req->timeseries()) {
      echo += labelsToString(labelsOf(ts));
      for (const auto& ex : ts.exemplars()) {
        Labels l;
        for (const auto& p : ex.labels()) l[p.name()] = p.value();
        echo += " exemplar " + labelsToString(l);
      }
      echo += "; ";
    }
    echoes_.push_back(echo);
    return HttpReply::withStatus(mode_ == kReject400 ? 400 : 500, echo);
  }

  mutable std::mutex mu_;
  Mode mode_ = kAccept;
  std::vector<prometheus::WriteRequest> received_;
  std::vector<std::string> echoes_;
  size_t undecodable_ = 0;
  HttpServer server_;  // last: destroyed first
};

// Where (and which) raw secrets occur in `text`: each secret in full, and for long ones also
// every 12-character piece, so a truncated or partly quoted value is caught too.
std::vector<std::string> secretsIn(const SecretBook& book, const std::string& where,
                                   const std::string& text) {
  std::vector<std::string> out;
  for (const auto& s : book.all()) {
    std::vector<std::string> probes = {s.value};
    if (s.value.size() >= 20)
      for (size_t i = 0; i + 12 <= s.value.size(); i += 12) probes.push_back(s.value.substr(i, 12));
    for (const auto& p : probes) {
      const size_t at = text.find(p);
      if (at == std::string::npos) continue;
      const size_t from = at > 60 ? at - 60 : 0;
      std::string context = text.substr(from, p.size() + 120);
      for (auto& c : context)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '.';
      out.push_back(where + ": the " + s.kind + " \"" + s.value + "\"" +
                    (p == s.value ? "" : " (its piece \"" + p + "\")") + " in: ..." + context + "...");
      break;
    }
  }
  return out;
}

std::string readAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr size_t kMaxValueLength = 200;  // --limits.max-label-value-length in case 2

TEST_CASE("sanitize: no secret anywhere Cardinal writes (log, responses, /metrics, storage)") {
  const auto started = Clock::now();
  Gen gen;
  INFO("random seed " << gen.seed());
  TempDir dir("cardinal-it-secrets");
  const auto storage = dir.subdir("state");
  EchoUpstream upstream;
  CardinalServer cardinal(dir, upstream.writeUrl(),
                          {"--log.level=debug", "--storage.path=" + storage.string(),
                           "--limits.max-label-value-length=" + std::to_string(kMaxValueLength),
                           "--aggregation.interval=1s", "--snapshot.interval=1s",
                           "--upstream.retry-budget=1s", "--upstream.backoff-min=20ms"});
  INFO(describe(cardinal.process()));

  SecretBook book;
  // Everything Cardinal answered, to scan at the end.
  std::vector<std::pair<std::string, std::string>> responses;
  auto record = [&](const std::string& what, const HttpResponse& r) {
    std::string all = r.body;
    for (const auto& [k, v] : r.headers.fields) all += "\n" + k + ": " + v;
    responses.emplace_back(what, all);
  };

  // One request full of secrets: a plain family (hashed labels), a merged family (user_id
  // dropped, secrets hashed into the output's labels, so the merge state holds them) and an
  // exemplar.
  auto secretRequest = [&](int64_t t, double v) {
    prometheus::WriteRequest req;
    std::vector<std::pair<std::string, std::string>> labels = {
        {"__name__", "secrets_seen_total"},
        {"email", book.add("email", gen.email())},
        {"client_ip", book.add("ipv4", gen.ipv4())},
        {"client_ip6", book.add("ipv6", gen.ipv6())},
        {"card", book.add("card", gen.visa(" "))},
        {"auth", book.add("jwt", gen.jwt())},
        {"token", book.add("token", gen.githubToken())},
        {"phone", book.add("phone", gen.phoneBr())},
        {"authorization", book.add("bearer token", "Bearer " + gen.alnum(32))},
        {"aws_key", book.add("AWS key id", "AKIA" + gen.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16))},
        {"env", kEnv}};
    auto* ts = addSeries(req, labels, {{v, t}});
    auto* ex = ts->add_exemplars();
    for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
             {"user_email", book.add("email", gen.email())}, {"peer", book.add("ipv4", gen.ipv4())}}) {
      auto* l = ex->add_labels();
      l->set_name(name);
      l->set_value(value);
    }
    ex->set_value(v);
    ex->set_timestamp(t);
    addSeries(req, {{"__name__", "checkout_request_latency_seconds"},
                    {"user_id", book.add("uuid", gen.uuid())},
                    {"email", book.add("email", gen.email())},
                    {"phone", book.add("phone", gen.phoneUs())},
                    {"env", kEnv}},
              {{0.25 * v, t}});
    addSeries(req, {{"__name__", "order_payment_failures_total"},
                    {"order_id", book.add("uuid", gen.uuid())},
                    {"card", book.add("card", gen.visa("-"))},
                    {"env", kEnv}},
              {{v, t}});
    return req;
  };

  // (a) Valid requests, secrets churning: 204, forwarded sanitized.
  int64_t t = nowMs();
  for (int i = 0; i < 3; ++i) {
    auto res = postRemoteWrite(cardinal.writeUrl(), secretRequest(t += 1, i + 1));
    record("valid request " + std::to_string(i), res);
    CHECK_MESSAGE(res.status == 204, "valid request " << i << ": " << res.summary());
  }
  // The same through a URL and headers carrying secrets, as some senders are configured.
  {
    const std::string query_token = book.add("token", gen.githubToken());
    const std::string bearer = book.add("bearer token", gen.alnum(40));
    auto headers = remoteWriteHeaders();
    headers.emplace_back("Authorization", "Bearer " + bearer);
    auto res = httpPost(cardinal.writeUrl() + "?api_key=" + query_token,
                        encodeWriteRequest(secretRequest(t += 1, 4)), headers);
    record("valid request with a token in the URL and an Authorization header", res);
    CHECK_MESSAGE(res.status == 204, res.summary());
  }

  // (b) Malformed requests (400) with secrets in them.
  struct Bad {
    std::string what;
    prometheus::WriteRequest req;
    std::string body;  // when set, sent instead of req
    std::set<int> statuses = {400};
  };
  std::vector<Bad> bad;
  auto secretLabels = [&] {
    return std::vector<std::pair<std::string, std::string>>{
        {"email", book.add("email", gen.email())},
        {"auth", book.add("jwt", gen.jwt())},
        {"card", book.add("card", gen.visa(" "))},
        {"client_ip", book.add("ipv6", gen.ipv6())}};
  };
  {
    Bad b{"duplicate label name next to secrets", {}, {}};
    auto l = secretLabels();
    l.insert(l.begin(), {"__name__", "it_bad"});
    l.emplace_back("x", "1");
    l.emplace_back("x", "2");
    addSeries(b.req, l, {{1, t}});
    bad.push_back(b);
  }
  {
    Bad b{"duplicate label name holding secrets", {}, {}};
    addSeries(b.req, {{"__name__", "it_bad"}, {"email", book.add("email", gen.email())},
                      {"email", book.add("email", gen.email())}, {"token", book.add("token", gen.githubToken())},
                      {"token", book.add("token", gen.githubToken())}},
              {{1, t}});
    bad.push_back(b);
  }
  for (const auto& [label, kind, secret] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"auth", "jwt", gen.jwt(kMaxValueLength)},
           {"authorization", "bearer token", "Bearer " + gen.alnum(kMaxValueLength + 20)},
           {"token", "token", "ghp_" + gen.alnum(kMaxValueLength)},
           {"email", "email", gen.lower(kMaxValueLength) + "@example.com"}}) {
    Bad b{"too-long " + label + " value that is the secret", {}, {}};
    REQUIRE(secret.size() > kMaxValueLength);
    addSeries(b.req, {{"__name__", "it_bad"}, {label, book.add(kind, secret)}}, {{1, t}});
    bad.push_back(b);
  }
  {
    Bad b{"invalid UTF-8 next to secrets", {}, {}};
    auto l = secretLabels();
    l.insert(l.begin(), {"__name__", "it_bad"});
    l.emplace_back("note", "@@ broken");
    addSeries(b.req, l, {{1, t}});
    // Patched in after serializing (protobuf refuses to serialize invalid UTF-8 quietly).
    std::string raw;
    b.req.SerializeToString(&raw);
    const size_t at = raw.find("@@ broken");
    REQUIRE(at != std::string::npos);
    raw[at] = '\xff';
    raw[at + 1] = '\xfe';
    b.body = snappyCompress(raw);
    bad.push_back(b);
  }
  {
    Bad b{"no __name__, secrets in the labels", {}, {}};
    addSeries(b.req, secretLabels(), {{1, t}});
    bad.push_back(b);
  }
  {
    Bad b{"samples out of order, secrets in the labels", {}, {}};
    auto l = secretLabels();
    l.insert(l.begin(), {"__name__", "it_bad"});
    addSeries(b.req, l, {{1, t}, {2, t - 1000}});
    bad.push_back(b);
  }
  {
    Bad b{"too many labels, all of them secrets", {}, {}};
    std::vector<std::pair<std::string, std::string>> l = {{"__name__", "it_bad"}};
    for (int i = 0; i < 300; ++i) l.emplace_back("l" + std::to_string(i), book.add("email", gen.email()));
    addSeries(b.req, l, {{1, t}});
    bad.push_back(b);
  }
  {
    Bad b{"too-long secret in an exemplar label", {}, {}};
    auto* ts = addSeries(b.req, {{"__name__", "it_bad"}, {"env", kEnv}}, {{1, t}});
    auto* ex = ts->add_exemplars();
    auto* l = ex->add_labels();
    l->set_name("user_email");
    l->set_value(book.add("email", gen.lower(kMaxValueLength) + "@example.org"));
    ex->set_value(1);
    ex->set_timestamp(t);
    b.statuses = {400, 204};  // either refused or accepted with the value hashed
    bad.push_back(b);
  }
  {
    Bad b{"truncated protobuf after a series of secrets", {}, {}};
    prometheus::WriteRequest req;
    auto l = secretLabels();
    l.insert(l.begin(), {"__name__", "it_bad"});
    addSeries(req, l, {{1, t}});
    addSeries(req, secretLabels(), {{1, t}});
    std::string raw;
    req.SerializeToString(&raw);
    b.body = snappyCompress(raw.substr(0, raw.size() - 30));
    bad.push_back(b);
  }
  for (const auto& b : bad) {
    CAPTURE(b.what);
    auto res = postRemoteWrite(cardinal.writeUrl(), b.body.empty() ? encodeWriteRequest(b.req) : b.body);
    record(b.what, res);
    CHECK_MESSAGE(b.statuses.count(res.status), b.what << ": " << res.summary());
  }
  REQUIRE_MESSAGE(waitUntil([&] { return cardinal.metric("cardinal_merged_requests_total", {{"outcome", "delivered"}})
                                             .value_or(0) >= 1; },
                            Millis(5000)),
                  "no merged request delivered");

  // (c) The upstream answers 400 echoing what it got: passed back to the sender, and since
  // Cardinal forwards sanitized data only, the echo holds tokens, not secrets. (d) The same
  // with 500: the sender gets 503.
  upstream.setMode(EchoUpstream::kReject400);
  {
    auto res = postRemoteWrite(cardinal.writeUrl(), secretRequest(t += 1, 5));
    record("upstream 400 with an echo", res);
    CHECK_MESSAGE(res.status == 400, res.summary());
    CHECK_MESSAGE(res.body.find("h:") != std::string::npos,
                  "the echo passed back should show the hash tokens Cardinal sent: " << res.summary(2000));
  }
  // Merged outputs emitted meanwhile are rejected too (and logged).
  CHECK(waitUntil([&] { return cardinal.metric("cardinal_merged_requests_total", {{"outcome", "rejected"}})
                                   .value_or(0) >= 1; },
                  Millis(5000)));
  upstream.setMode(EchoUpstream::kFail500);
  {
    auto res = postRemoteWrite(cardinal.writeUrl(), secretRequest(t += 1, 6));
    record("upstream 500 with an echo", res);
    CHECK_MESSAGE(res.status == 503, res.summary());
  }
  upstream.setMode(EchoUpstream::kAccept);
  {
    auto res = postRemoteWrite(cardinal.writeUrl(), secretRequest(t += 1, 7));
    record("valid request after the upstream recovered", res);
    CHECK_MESSAGE(res.status == 204, res.summary());
  }

  // (e) Cardinal's own endpoints.
  for (const char* path : {"/metrics", "/api/v1/stats", "/-/healthy", "/-/ready"}) {
    auto res = httpGet(cardinal.baseUrl() + path);
    record(std::string("GET ") + path, res);
    if (std::string(path) == "/api/v1/stats")
      CHECK_MESSAGE((res.status == 200 || res.status == 404), res.summary());
    else
      CHECK_MESSAGE(res.status == 200, path << ": " << res.summary());
  }
  // A merged snapshot is written every second; SIGTERM writes the last one.
  const auto status = cardinal.stop();
  CHECK_MESSAGE((status.exited && status.code == 0), status.toString());

  std::vector<std::string> leaks;
  auto scan = [&](const std::string& where, const std::string& text) {
    for (auto& l : secretsIn(book, where, text)) leaks.push_back(l);
  };
  for (const auto& [what, body] : responses) scan("response to " + what, body);
  const std::string log = readAll(cardinal.process().logFile());
  scan("Cardinal's log", log);
  CHECK_MESSAGE(log.find("rejected write request") != std::string::npos,
                "the debug log should show the rejected requests (is --log.level=debug effective?)");
  size_t storage_files = 0;
  bool snapshot_seen = false;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(storage)) {
    if (!entry.is_regular_file()) continue;
    if (entry.path().filename() == "hmac.key") {
      const auto perms = std::filesystem::status(entry.path()).permissions();
      CHECK_MESSAGE((perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) ==
                        std::filesystem::perms::none,
                    "hmac.key is readable by group or others");
      continue;
    }
    ++storage_files;
    if (entry.path().filename() == "merge.snapshot") snapshot_seen = true;
    scan("storage file " + entry.path().string(), readAll(entry.path()));
  }
  CHECK_MESSAGE(snapshot_seen, "no merge.snapshot under --storage.path after SIGTERM");
  // What reached the upstream (Cardinal writes it too): tokens only.
  {
    const auto received = upstream.received();
    CHECK(upstream.undecodable() == 0);
    CHECK(received.size() >= 5);
    std::string all;
    for (const auto& req : received)
      for (const auto& ts : req.timeseries()) {
        all += labelsToString(labelsOf(ts)) + "\n";
        for (const auto& ex : ts.exemplars())
          for (const auto& l : ex.labels()) all += l.name() + "=" + l.value() + "\n";
      }
    scan("data forwarded upstream", all);
    CHECK(all.find("h:") != std::string::npos);
    for (const auto& e : upstream.echoes()) scan("upstream echo", e);  // sanity: same data
  }
  CHECK_MESSAGE(leaks.empty(), leaks.size() << " raw secrets found where Cardinal writes:\n" << join(leaks));
  INFO("scanned " << responses.size() << " responses, the log (" << log.size() << " bytes), "
                  << storage_files << " storage files; " << book.all().size() << " secrets");

  const auto took = std::chrono::duration_cast<Millis>(Clock::now() - started).count();
  CHECK_MESSAGE(took < 60000, "took " << took << " ms");
}


// ---------------------------------------------------------------------------------------------
// Case 3: a secret inside a value that a normalize rule also handles (an email in a query
// string or a SQL literal, an IP in a URL): the value must end up either normalized (the
// query string and the literal go, and the secret with them) or a well-formed hash token;
// never a hash token the normalizer then rewrote ("h:{hex}", "h:?c316...").

TEST_CASE("sanitize: secrets inside URL paths, SQL and file paths end up normalized away or as "
          "intact hash tokens") {
  Gen gen;
  INFO("random seed " << gen.seed());
  TempDir dir("cardinal-it-sanitize-normalize");
  FakeUpstream upstream;
  CardinalServer cardinal(dir, upstream.writeUrl(), {"--aggregation.interval=1s"});
  INFO(describe(cardinal.process()));

  SecretBook book;
  // metric, label, raw value, what the issue's normalizers make of it ("" = no expectation
  // beyond "no secret, no mangled token").
  std::vector<std::tuple<std::string, std::string, std::string, std::string>> sent;
  const int64_t t0 = nowMs();
  for (int i = 0; i < 2; ++i) {
    prometheus::WriteRequest req;
    auto add = [&](const std::string& metric, const std::string& label, const std::string& value,
                   const std::string& want) {
      addSeries(req, {{"__name__", metric}, {label, value}, {"env", kEnv}}, {{1.0 + i, t0 + i}});
      sent.emplace_back(metric, label, value, want);
    };
    for (int j = 0; j < 2; ++j) {
      add("api_request_count", "path", "/api/v1/reset?email=" + book.add("email", gen.email()),
          "/api/v1/reset");
      add("api_request_count", "path", "/oauth/callback?access_token=" + book.add("jwt", gen.jwt()),
          "/oauth/callback");
      add("db_query_duration_seconds", "query",
          "SELECT * FROM users WHERE email = '" + book.add("email", gen.email()) + "'",
          "SELECT * FROM users WHERE email = ?");
      add("temp_file_size_bytes", "file_path", "/home/" + book.add("email", gen.email()) + "/notes.txt",
          "/home/{id}/notes.txt");
      add("http_client_requests_total", "url",
          "http://" + book.add("ipv4", gen.ipv4()) + ":8080/api/v1/users/" + gen.digits(6), "");
    }
    auto res = postRemoteWrite(cardinal.writeUrl(), req);
    REQUIRE_MESSAGE(res.status == 204, res.summary());
  }
  // Merged families are emitted every second.
  std::this_thread::sleep_for(Millis(2500));

  std::map<std::string, std::set<std::string>> got;  // "metric/label" -> values forwarded
  std::vector<std::string> problems;
  for (const auto& ts : upstream.allSeries()) {
    const Labels l = labelsOf(ts);
    for (const auto& [name, value] : l) {
      for (auto& p : shapeProblems(name, value)) problems.push_back(labelsToString(l) + ": " + p);
      for (auto& p : leaksIn(book, "forwarded", name, value)) problems.push_back(p);
      if (name != "__name__" && name != "env") got[l.at("__name__") + "/" + name].insert(value);
    }
  }
  std::string got_text;
  for (const auto& [k, values] : got)
    for (const auto& v : values) got_text += k + " = " + v + "\n";
  INFO("forwarded values:\n" << got_text);
  CHECK_MESSAGE(problems.empty(), problems.size() << " forwarded values are leaks or mangled tokens:\n"
                                                  << join(problems));
  std::vector<std::string> not_normalized;
  for (const auto& [metric, label, value, want] : sent)
    if (!want.empty() && !got[metric + "/" + label].count(want))
      not_normalized.push_back(metric + "{" + label + "=\"" + value + "\"} should arrive as \"" + want + "\"");
  CHECK_MESSAGE(not_normalized.empty(), not_normalized.size() << " values not normalized:\n"
                                                              << join(not_normalized));
}

}  // namespace
}  // namespace cardinal::integration
