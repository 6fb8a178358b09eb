#include "workload.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <span>

#include "codec/encode.h"
#include "core/hash.h"

namespace cardinal::bench {
namespace {

using core::LabelView;
using core::mix64;

enum Family : int {
  kCheckoutLatency = 0,  // gauge, user_id = uuid
  kPaymentFailures,      // counter, order_id = uuid
  kProcessCpu,           // gauge, pid
  kTempFileSize,         // gauge, file_path with an epoch-ms session
  kAuthEvents,           // counter, timestamp = ISO 8601 with microseconds
  kUserLogins,           // counter, email
  kApiRequests,          // counter, path with a user id and an order number
  kDbQueryDuration,      // gauge, query = SQL text with a literal id
  kHttpRequests,         // counter, well-behaved: method, route, code, country, version, shard
};

struct SeedFamily {
  std::string_view name;
  std::string_view label;  // the high-cardinality or sensitive label
  std::string_view job;
  int subnet;  // instance addresses 10.<subnet>.0.x
  std::string_view port;
};

constexpr SeedFamily kSeedFamilies[] = {
    {"checkout_request_latency_seconds", "user_id", "checkout", 10, "8080"},
    {"order_payment_failures_total", "order_id", "payments", 11, "8080"},
    {"process_cpu_percent", "pid", "node", 12, "9100"},
    {"temp_file_size_bytes", "file_path", "uploader", 13, "9000"},
    {"auth_event_count", "timestamp", "auth", 14, "8443"},
    {"user_login_total", "email", "auth", 14, "8443"},
    {"api_request_count", "path", "api", 15, "8080"},
    {"db_query_duration_seconds", "query", "orders-db", 16, "9187"},
};

constexpr std::string_view kRegions[] = {"us-east", "us-west", "eu-west", "eu-central", "sa-east", "ap-south"};
constexpr std::string_view kFirstNames[] = {
    "joao",  "maria",  "carlos", "ana",   "pedro",  "lucas",  "julia", "rafael", "fernanda", "bruno",
    "camila", "diego", "beatriz", "tiago", "larissa", "mateus", "paula", "felipe", "aline",   "gustavo",
    "james", "mary",   "robert", "linda", "michael", "sarah", "david", "emma",   "daniel",  "olivia",
    "li",    "wei",    "yuki",   "hana",  "omar",   "fatima", "ivan",  "olga",   "lars",    "ingrid"};
constexpr std::string_view kLastNames[] = {
    "silva",  "oliveira", "santos", "paula",  "almeida", "souza",  "lima",    "costa",  "pereira", "rodrigues",
    "ferreira", "gomes",  "martins", "rocha", "ribeiro", "carvalho", "barbosa", "smith", "johnson", "williams",
    "brown",  "jones",    "garcia", "miller", "davis",   "wilson", "taylor",  "thomas", "moore",   "clark",
    "wang",   "zhang",    "tanaka", "suzuki", "hassan",  "khan",   "petrov",  "ivanova", "hansen", "berg"};
constexpr std::string_view kEmailDomains[] = {"example.com", "mail.example.org", "corp.example.net", "example.co.uk",
                                              "inbox.example.io"};

// Well-behaved http_requests_total: every combination is one series.
constexpr std::string_view kMethods[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
constexpr std::string_view kCodes[] = {"200", "201", "204", "400", "404", "500"};
constexpr std::string_view kVersions[] = {"v1.4.2", "v1.5.0", "v1.5.1"};
constexpr std::string_view kShards[] = {"0", "1", "2",  "3",  "4",  "5",  "6",  "7",
                                        "8", "9", "10", "11", "12", "13", "14", "15"};
constexpr size_t kRouteCount = 300;
constexpr size_t kCountryCount = 200;
constexpr uint64_t kHttpCombinations = std::size(kMethods) * kRouteCount * std::size(kCodes) * kCountryCount *
                                       std::size(kVersions) * std::size(kShards);  // 86.4 M
constexpr uint64_t kHttpScramble = 2654435761u;  // prime, so coprime with kHttpCombinations

// ISO 3166-1 alpha-2 codes, two letters each; the first kCountryCount are used.
constexpr std::string_view kCountryCodes =
    "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZCACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCX"
    "CYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFRGAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIR"
    "ISITJEJMJOJPKEKGKHKIKMKNKPKRKWKYKZLALBLCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNANCNE"
    "NFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPMPNPRPSPTPWPYQARERORSRURWSASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTF"
    "TGTHTJTKTLTMTNTOTRTTTVTWTZUAUGUMUSUYUZVAVCVEVGVIVNVUWFWSYEYTZAZMZW";
static_assert(kCountryCodes.size() >= 2 * kCountryCount, "not enough country codes");

std::string_view country(size_t i) { return kCountryCodes.substr(2 * i, 2); }

// 300 routes: 30 resources x 10 shapes.
const std::vector<std::string>& routes() {
  static const std::vector<std::string> table = [] {
    constexpr std::string_view resources[] = {
        "users",   "orders",    "payments", "carts",    "products", "invoices", "sessions", "accounts", "reviews",
        "coupons", "shipments", "refunds",  "addresses", "wishlists", "stores",  "vendors",  "categories",
        "prices",  "stock",     "returns",  "tickets",  "messages", "reports",  "exports",  "webhooks", "tokens",
        "plans",   "subscriptions", "notifications", "search"};
    constexpr std::string_view shapes[] = {"",        "/{id}",      "/{id}/items", "/{id}/history", "/{id}/status",
                                           "/export", "/bulk",      "/{id}/notes", "/count",        "/{id}/events"};
    static_assert(std::size(resources) * std::size(shapes) == kRouteCount);
    std::vector<std::string> t;
    for (auto r : resources)
      for (auto s : shapes) t.push_back("/api/v1/" + std::string(r) + std::string(s));
    return t;
  }();
  return table;
}

void appendDecimal(std::string& out, uint64_t v, int min_digits = 1) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  for (int pad = min_digits - static_cast<int>(end - buf); pad > 0; --pad) out.push_back('0');
  out.append(buf, end);
}

// A version-4 UUID whose first 64 random bits are `hi` itself (all of them,
// around the version and variant digits), so distinct `hi` give distinct UUIDs.
void appendUuid(std::string& out, uint64_t hi, uint64_t lo) {
  static constexpr char kHex[] = "0123456789abcdef";
  char d[32];
  for (int i = 0; i < 12; ++i) d[i] = kHex[(hi >> (60 - 4 * i)) & 15];         // hi digits 0..11
  d[12] = '4';                                                                 // version
  for (int i = 13; i < 16; ++i) d[i] = kHex[(hi >> (60 - 4 * (i - 1))) & 15];  // hi digits 12..14
  d[16] = kHex[8 + (lo & 3)];                                                  // variant 10xx
  d[17] = kHex[hi & 15];                                                       // hi digit 15
  for (int i = 18; i < 32; ++i) d[i] = kHex[(lo >> (4 * (i - 16))) & 15];
  out.append(d, 8).append(1, '-').append(d + 8, 4).append(1, '-').append(d + 12, 4).append(1, '-');
  out.append(d + 16, 4).append(1, '-').append(d + 20, 12);
}

// Howard Hinnant's civil_from_days: days since 1970-01-01 -> y, m, d.
void civilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

// "2025-08-12T10:03:42.123456Z"
void appendIso8601Micros(std::string& out, int64_t micros) {
  int64_t secs = micros / 1'000'000;
  auto frac = static_cast<uint64_t>(micros % 1'000'000);
  int64_t days = secs / 86400;
  auto sod = static_cast<uint64_t>(secs % 86400);
  int64_t y;
  unsigned m, d;
  civilFromDays(days, y, m, d);
  appendDecimal(out, static_cast<uint64_t>(y), 4);
  out.push_back('-');
  appendDecimal(out, m, 2);
  out.push_back('-');
  appendDecimal(out, d, 2);
  out.push_back('T');
  appendDecimal(out, sod / 3600, 2);
  out.push_back(':');
  appendDecimal(out, sod / 60 % 60, 2);
  out.push_back(':');
  appendDecimal(out, sod % 60, 2);
  out.push_back('.');
  appendDecimal(out, frac, 6);
  out.push_back('Z');
}

constexpr int64_t kAuthEpochMicros = 1'754'993'022'000'000;  // 2025-08-12T10:03:42Z, the seed's first event
constexpr uint64_t kUploadEpochMs = 1'691'831'294'000;       // the seed's first upload session

}  // namespace

std::optional<Mix> parseMix(std::string_view s) {
  if (s == "seed") return Mix::kSeed;
  if (s == "wellbehaved") return Mix::kWellBehaved;
  return std::nullopt;
}

const char* mixName(Mix m) { return m == Mix::kSeed ? "seed" : "wellbehaved"; }

Workload::Workload(const WorkloadConfig& config) : config_(config) {}

core::Result<Workload> Workload::create(const WorkloadConfig& config) {
  if (config.series_per_request == 0) return core::Error{"series per request must be at least 1"};
  if (!(config.fresh_ratio >= 0 && config.fresh_ratio <= 1))
    return core::Error{"fresh ratio must be between 0 and 1"};
  if (config.streams == 0) return core::Error{"streams must be at least 1"};
  Workload w(config);
  w.fresh_ = static_cast<size_t>(std::llround(static_cast<double>(config.series_per_request) * config.fresh_ratio));
  w.repeating_ = config.series_per_request - w.fresh_;
  if (w.repeating_ > 0) {
    w.slice_ = config.population ? config.population / config.streams : 10 * w.repeating_;
    if (w.slice_ < w.repeating_)
      return core::Error{"population " + std::to_string(config.population) + " is too small: each of the " +
                         std::to_string(config.streams) + " streams needs at least " + std::to_string(w.repeating_) +
                         " repeating series per request"};
  }
  w.salt_ = mix64(config.seed ^ 0x6a09e667f3bcc909ULL);
  (void)routes();  // build the table before any timed phase
  return w;
}

int Workload::familyOf(uint64_t id) const {
  if (config_.mix == Mix::kWellBehaved) return kHttpRequests;
  uint64_t h = mix64(id ^ salt_);
  if (h % 100 < 20) return kHttpRequests;
  return static_cast<int>((h >> 8) % std::size(kSeedFamilies));
}

size_t Workload::fillLabels(uint64_t id) {
  const uint64_t h = mix64(id ^ salt_ ^ 0x3c6ef372fe94f82bULL);  // per-series randomness for non-identity parts
  for (auto& v : values_) v.clear();
  size_t n = 0;
  auto add = [&](std::string_view name, std::string_view value) { labels_[n++] = {name, value}; };
  const int fam = familyOf(id);

  if (fam == kHttpRequests) {
    uint64_t c = (((id + salt_) % kHttpCombinations) * (kHttpScramble % kHttpCombinations)) % kHttpCombinations;
    size_t shard = c % std::size(kShards);
    c /= std::size(kShards);
    size_t version = c % std::size(kVersions);
    c /= std::size(kVersions);
    size_t ctry = c % kCountryCount;
    c /= kCountryCount;
    size_t code = c % std::size(kCodes);
    c /= std::size(kCodes);
    size_t route = c % kRouteCount;
    c /= kRouteCount;
    size_t method = c % std::size(kMethods);
    std::string& instance = values_[1];
    instance = "10.2.0.";
    appendDecimal(instance, 10 + shard);
    instance += ":8080";
    add(core::kMetricNameLabel, "http_requests_total");
    add("code", kCodes[code]);
    add("country", country(ctry));
    add("env", "prod");
    add("instance", instance);
    add("job", "api-gateway");
    add("method", kMethods[method]);
    add("region", kRegions[shard % std::size(kRegions)]);
    add("route", routes()[route]);
    add("shard", kShards[shard]);
    add("version", kVersions[version]);
  } else {
    const SeedFamily& f = kSeedFamilies[fam];
    std::string& value = values_[0];
    switch (fam) {
      case kCheckoutLatency:
      case kPaymentFailures: {
        uint64_t hi = mix64(id ^ salt_ ^ (fam == kCheckoutLatency ? 0x1111 : 0x2222));
        appendUuid(value, hi, mix64(hi));
        break;
      }
      case kProcessCpu:
        appendDecimal(value, 1000 + id);
        break;
      case kTempFileSize:
        value = "/tmp/upload/session_";
        appendDecimal(value, kUploadEpochMs + id * 1000 + h % 1000);
        value += "/file.txt";
        break;
      case kAuthEvents:
        appendIso8601Micros(value, kAuthEpochMicros + static_cast<int64_t>(id * 1'000'000 + h % 1'000'000));
        break;
      case kUserLogins: {
        constexpr uint64_t nf = std::size(kFirstNames), nl = std::size(kLastNames);
        value.append(kFirstNames[id % nf]).append(1, '.').append(kLastNames[id / nf % nl]);
        if (id >= nf * nl) appendDecimal(value, id / (nf * nl));
        value.append(1, '@').append(kEmailDomains[h % std::size(kEmailDomains)]);
        break;
      }
      case kApiRequests: {
        // "/users/abc123/orders/456": three letters and a number name the user.
        uint64_t u = id % 17576;
        value = "/users/";
        value.push_back(static_cast<char>('a' + u / 676));
        value.push_back(static_cast<char>('a' + u / 26 % 26));
        value.push_back(static_cast<char>('a' + u % 26));
        appendDecimal(value, id / 17576, 3);
        value += "/orders/";
        appendDecimal(value, 1 + h % 999);
        break;
      }
      default:  // kDbQueryDuration
        value = "SELECT * FROM orders WHERE id = ";
        appendDecimal(value, 10000 + id);
        break;
    }
    std::string& instance = values_[1];
    instance = "10.";
    appendDecimal(instance, static_cast<uint64_t>(f.subnet));
    instance += ".0.";
    appendDecimal(instance, 10 + (h >> 16) % 24);
    instance.append(1, ':').append(f.port);
    add(core::kMetricNameLabel, f.name);
    add("env", (h >> 32) % 8 == 0 ? "staging" : "prod");
    add("instance", instance);
    add("job", f.job);
    add("region", kRegions[(h >> 40) % std::size(kRegions)]);
    add(f.label, value);
  }
  std::sort(labels_, labels_ + n, [](const LabelView& a, const LabelView& b) { return a.name < b.name; });
  return n;
}

double Workload::valueOf(uint64_t id, uint64_t cycle) {
  const uint64_t h = mix64(id ^ salt_ ^ 0xbb67ae8584caa73bULL);
  const uint64_t g = mix64(h + cycle);  // changes every cycle: gauges
  auto counter = [&](uint64_t base, uint64_t max_step) {
    return static_cast<double>(base + cycle * ((h >> 24) % (max_step + 1)));
  };
  switch (familyOf(id)) {
    case kCheckoutLatency: return 0.05 + static_cast<double>(g % 2000) / 1000.0;
    case kPaymentFailures: return counter(1 + h % 5, 2);
    case kProcessCpu: return static_cast<double>(g % 1000) / 10.0;
    case kTempFileSize: return static_cast<double>(512 * (1 + g % 200));
    case kAuthEvents: return counter(1 + h % 8, 5);
    case kUserLogins: return counter(1 + h % 10, 3);
    case kApiRequests: return counter(5 + h % 30, 40);
    case kDbQueryDuration: return static_cast<double>(1 + g % 250) / 1000.0;
    default: return counter(h % 5000, 200);  // kHttpRequests
  }
}

std::vector<core::LabelView> Workload::labelsOf(uint64_t id) {
  size_t n = fillLabels(id);
  return {labels_, labels_ + n};
}

void Workload::appendSeries(uint64_t id, uint64_t cycle, int64_t timestamp_ms, std::string& raw) {
  size_t n = fillLabels(id);
  codec::Sample sample{timestamp_ms, valueOf(id, cycle)};
  codec::appendSeries(raw, std::span<const LabelView>(labels_, n), std::span<const codec::Sample>(&sample, 1));
}

RequestCounts Workload::build(size_t stream, uint64_t seq, int64_t timestamp_ms, std::string& raw) {
  raw.clear();
  raw.reserve(config_.series_per_request * 200);
  for (size_t j = 0; j < repeating_; ++j) {
    uint64_t pos = seq * repeating_ + j;
    appendSeries(stream * slice_ + pos % slice_, pos / slice_, timestamp_ms, raw);
  }
  const uint64_t fresh_base = population() + (seq * config_.streams + stream) * fresh_;
  for (size_t j = 0; j < fresh_; ++j) appendSeries(fresh_base + j, 0, timestamp_ms, raw);
  return {config_.series_per_request, config_.series_per_request};
}

}  // namespace cardinal::bench
