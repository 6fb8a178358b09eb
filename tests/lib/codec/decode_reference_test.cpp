// The 1.0 decoder against its pre-fast-path self (reference_decode_v1.cpp):
// on canonical and non-canonical encodings (value before name, multi-byte
// lengths, unknown and repeated fields, interleaved labels and samples, ...),
// refusals of every kind and random mutations, both must accept the same
// requests with identical batches (views at the same bytes, hashes, flags) and
// refuse the same requests with the same message.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "codec/decode.h"
#include "codec/wire.h"

using namespace cardinal;

namespace cardinal::codec::reference_v1 {
core::Status decodeWriteRequest(std::string_view buf, const Limits& limits, SeriesBatch& out);
}

namespace {

using codec::wire::putTag;
using codec::wire::putVarint;
namespace wire = codec::wire;

bool sameView(std::string_view a, std::string_view b) { return a.data() == b.data() && a.size() == b.size(); }
bool sameBits(double a, double b) { return std::memcmp(&a, &b, 8) == 0; }

// Every field of both batches; views must point at the same bytes.
std::string diffBatches(const codec::SeriesBatch& a, const codec::SeriesBatch& b) {
  if (a.series.size() != b.series.size()) return "series count";
  for (size_t i = 0; i < a.series.size(); ++i) {
    const auto &x = a.series[i], &y = b.series[i];
    if (x.label_begin != y.label_begin || x.label_count != y.label_count || x.sample_begin != y.sample_begin ||
        x.sample_count != y.sample_count || x.histogram_begin != y.histogram_begin ||
        x.histogram_count != y.histogram_count || x.exemplar_begin != y.exemplar_begin ||
        x.exemplar_count != y.exemplar_count || !sameView(x.raw, y.raw) || x.hash != y.hash ||
        x.input_hash != y.input_hash || x.changed != y.changed || x.dropped != y.dropped || x.merge != y.merge)
      return "series " + std::to_string(i);
  }
  if (a.labels.size() != b.labels.size()) return "label count";
  for (size_t i = 0; i < a.labels.size(); ++i)
    if (!sameView(a.labels[i].name, b.labels[i].name) || !sameView(a.labels[i].value, b.labels[i].value))
      return "label " + std::to_string(i);
  if (a.samples.size() != b.samples.size()) return "sample count";
  for (size_t i = 0; i < a.samples.size(); ++i)
    if (a.samples[i].timestamp != b.samples[i].timestamp || !sameBits(a.samples[i].value, b.samples[i].value))
      return "sample " + std::to_string(i);
  if (a.histograms.size() != b.histograms.size()) return "histogram count";
  for (size_t i = 0; i < a.histograms.size(); ++i) {
    const auto &x = a.histograms[i], &y = b.histograms[i];
    if (!sameView(x.raw, y.raw) || x.timestamp != y.timestamp || x.count_is_float != y.count_is_float ||
        x.count_int != y.count_int || !sameBits(x.count_float, y.count_float) || !sameBits(x.sum, y.sum) ||
        x.schema != y.schema || !sameBits(x.zero_threshold, y.zero_threshold) ||
        x.zero_count_is_float != y.zero_count_is_float || x.zero_count_int != y.zero_count_int ||
        !sameBits(x.zero_count_float, y.zero_count_float) || x.reset_hint != y.reset_hint ||
        x.start_timestamp != y.start_timestamp)
      return "histogram " + std::to_string(i);
  }
  if (a.exemplars.size() != b.exemplars.size()) return "exemplar count";
  for (size_t i = 0; i < a.exemplars.size(); ++i) {
    const auto &x = a.exemplars[i], &y = b.exemplars[i];
    if (x.label_begin != y.label_begin || x.label_count != y.label_count || !sameBits(x.value, y.value) ||
        x.timestamp != y.timestamp)
      return "exemplar " + std::to_string(i);
  }
  if (a.exemplar_labels.size() != b.exemplar_labels.size()) return "exemplar label count";
  for (size_t i = 0; i < a.exemplar_labels.size(); ++i)
    if (!sameView(a.exemplar_labels[i].name, b.exemplar_labels[i].name) ||
        !sameView(a.exemplar_labels[i].value, b.exemplar_labels[i].value))
      return "exemplar label " + std::to_string(i);
  if (a.metadata.size() != b.metadata.size()) return "metadata count";
  for (size_t i = 0; i < a.metadata.size(); ++i) {
    const auto &x = a.metadata[i], &y = b.metadata[i];
    if (!sameView(x.raw, y.raw) || x.type != y.type || !sameView(x.family, y.family) || !sameView(x.help, y.help) ||
        !sameView(x.unit, y.unit) || x.changed != y.changed)
      return "metadata " + std::to_string(i);
  }
  if (a.protocol != b.protocol) return "protocol";
  return "";
}

void putLen(std::string& out, uint32_t field, std::string_view payload) {
  putTag(out, field, wire::kLen);
  putVarint(out, payload.size());
  out.append(payload);
}

// A varint padded to `extra` more bytes than needed (protobuf accepts it).
void putPaddedVarint(std::string& out, uint64_t v, int extra) {
  for (int i = 0; i < extra || v >= 0x80; ++i) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
    if (i >= 9) break;
  }
  out += static_cast<char>(v & 0x7f);
}

struct Gen {
  std::mt19937_64 rng;
  explicit Gen(uint64_t seed) : rng(seed) {}
  int upTo(int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n + 1)); }
  bool one(int in) { return upTo(in - 1) == 0; }

  std::string word(int max_len) {
    static const char* alphabet[] = {"a", "b", "z", "_", "0", "9", "/", " ", "\xc3\xa9", "\xe2\x82\xac", "{", "\""};
    std::string s;
    int n = 1 + upTo(max_len - 1);
    for (int i = 0; i < n; ++i) s += alphabet[rng() % (one(4) ? 12 : 8)];
    return s;
  }
  std::string value() {
    switch (upTo(12)) {
      case 0: return "";
      case 1: return std::string(static_cast<size_t>(120 + upTo(20)), 'v');  // around the one-byte length limit
      case 2: return "bad\xff";                                              // invalid UTF-8
      case 3: return "\xc3\xa9t\xc3\xa9";
      default: return word(24);
    }
  }

  std::string label(std::string_view name, std::string_view value) {
    std::string l;
    switch (upTo(24)) {
      case 0:  // value first
        putLen(l, 2, value);
        putLen(l, 1, name);
        break;
      case 1:  // a multi-byte (padded) length
        putTag(l, 1, wire::kLen);
        putPaddedVarint(l, name.size(), 1);
        l += name;
        putLen(l, 2, value);
        break;
      case 2:  // an unknown field
        putLen(l, 1, name);
        putTag(l, 7, wire::kVarint);
        putVarint(l, rng() % 1000);
        putLen(l, 2, value);
        break;
      case 3:  // a repeated name (the last one wins)
        putLen(l, 1, "zzz");
        putLen(l, 1, name);
        putLen(l, 2, value);
        break;
      case 4:  // no value field at all when it is empty
        putLen(l, 1, name);
        if (!value.empty()) putLen(l, 2, value);
        break;
      default:
        putLen(l, 1, name);
        putLen(l, 2, value);
    }
    return l;
  }

  std::string sample(int64_t ts) {
    std::string s;
    double v = upTo(3) == 0 ? 0.0 : static_cast<double>(rng() % 100000) / 7;
    char buf[8];
    std::memcpy(buf, &v, 8);
    switch (upTo(16)) {
      case 0:  // timestamp first
        putTag(s, 2, wire::kVarint);
        putVarint(s, static_cast<uint64_t>(ts));
        putTag(s, 1, wire::kI64);
        s.append(buf, 8);
        break;
      case 1:  // value omitted (proto3 default)
        putTag(s, 2, wire::kVarint);
        putVarint(s, static_cast<uint64_t>(ts));
        break;
      case 2:  // timestamp omitted
        putTag(s, 1, wire::kI64);
        s.append(buf, 8);
        break;
      case 3:  // padded timestamp varint
        putTag(s, 1, wire::kI64);
        s.append(buf, 8);
        putTag(s, 2, wire::kVarint);
        putPaddedVarint(s, static_cast<uint64_t>(ts), 1 + upTo(2));
        break;
      case 4:  // an unknown field
        putTag(s, 1, wire::kI64);
        s.append(buf, 8);
        putTag(s, 2, wire::kVarint);
        putVarint(s, static_cast<uint64_t>(ts));
        putTag(s, 9, wire::kI32);
        s.append("abcd");
        break;
      default:
        putTag(s, 1, wire::kI64);
        s.append(buf, 8);
        putTag(s, 2, wire::kVarint);
        putVarint(s, static_cast<uint64_t>(ts));
    }
    return s;
  }

  std::string series(int idx) {
    std::vector<std::pair<std::string, std::string>> labels;
    if (!one(12)) labels.emplace_back("__name__", one(16) ? "" : "m" + std::to_string(idx % 3));
    int extra = upTo(9);
    for (int j = 0; j < extra; ++j) {
      std::string name;
      switch (upTo(14)) {
        case 0: name = ""; break;
        case 1: name = std::string(static_cast<size_t>(125 + upTo(10)), 'n'); break;
        case 2: name = "n\xff"; break;
        default: name = "l" + word(4);
      }
      labels.emplace_back(name, value());
    }
    if (!one(6)) std::sort(labels.begin(), labels.end());
    if (one(10) && !labels.empty()) labels.push_back(labels[rng() % labels.size()]);  // a duplicate name
    std::vector<std::string> parts;
    for (const auto& [n, v] : labels) {
      std::string l = label(n, v);
      std::string f;
      if (one(30)) {  // padded outer length
        putTag(f, 1, wire::kLen);
        putPaddedVarint(f, l.size(), 1);
        f += l;
      } else {
        putLen(f, 1, l);
      }
      parts.push_back(f);
    }
    int64_t ts = 1'700'000'000'000 + static_cast<int64_t>(rng() % 100000);
    if (one(10)) ts = -static_cast<int64_t>(rng() % 1000);                    // 10-byte varints
    else if (one(5)) ts = static_cast<int64_t>(rng() >> (1 + upTo(62)));  // every varint length
    for (int k = upTo(3); k > 0; --k) {
      std::string f;
      putLen(f, 2, sample(ts));
      parts.push_back(f);
      ts += one(8) ? -1 : upTo(2) * 15000;
    }
    if (one(10)) {  // a native histogram (count_int, timestamp)
      std::string h;
      putTag(h, 1, wire::kVarint);
      putVarint(h, rng() % 50);
      putTag(h, 15, wire::kVarint);
      putVarint(h, static_cast<uint64_t>(ts));
      std::string f;
      putLen(f, 4, h);
      parts.push_back(f);
    }
    if (one(10)) {  // an exemplar
      std::string e, el;
      putLen(el, 1, "trace_id");
      putLen(el, 2, word(8));
      putLen(e, 1, el);
      putTag(e, 2, wire::kI64);
      e.append("\0\0\0\0\0\0\xf0?", 8);
      putTag(e, 3, wire::kVarint);
      putVarint(e, static_cast<uint64_t>(ts));
      std::string f;
      putLen(f, 3, e);
      parts.push_back(f);
    }
    if (one(12)) {  // unknown series fields
      std::string f;
      putTag(f, 9, wire::kVarint);
      putVarint(f, rng());
      putTag(f, 10, wire::kStartGroup);
      putTag(f, 1, wire::kI32);
      f.append("wxyz");
      putTag(f, 10, wire::kEndGroup);
      parts.push_back(f);
    }
    if (one(8) && parts.size() > 1) std::swap(parts[rng() % parts.size()], parts[rng() % parts.size()]);
    std::string body;
    for (const auto& p : parts) body += p;
    return body;
  }

  std::string request() {
    std::string req;
    int n = upTo(5);
    for (int i = 0; i < n; ++i) {
      std::string s = series(i);
      if (one(40)) {
        putTag(req, 1, wire::kLen);
        putPaddedVarint(req, s.size(), 1);
        req += s;
      } else {
        putLen(req, 1, s);
      }
      if (one(10)) {
        std::string m;
        putTag(m, 1, wire::kVarint);
        putVarint(m, static_cast<uint64_t>(upTo(7)));
        putLen(m, 2, "m" + std::to_string(i));
        putLen(m, 4, word(10));
        putLen(req, 3, m);
      }
    }
    return req;
  }

  codec::Limits limits() {
    codec::Limits l;
    if (one(6)) l.max_labels_per_series = static_cast<size_t>(upTo(6));
    if (one(6)) l.max_label_name_bytes = static_cast<size_t>(1 + upTo(8));
    if (one(6)) l.max_label_value_bytes = static_cast<size_t>(upTo(20));
    if (one(8)) l.max_series_per_request = static_cast<size_t>(upTo(4));
    return l;
  }

  void mutate(std::string& raw) {
    int edits = 1 + upTo(2);
    for (int e = 0; e < edits && !raw.empty(); ++e) {
      size_t pos = rng() % raw.size();
      switch (upTo(3)) {
        case 0: raw[pos] = static_cast<char>(rng()); break;
        case 1: raw[pos] ^= static_cast<char>(1 << upTo(7)); break;
        case 2: raw.resize(pos); break;
        default: raw.insert(pos, 1, static_cast<char>(rng())); break;
      }
    }
  }
};

struct Outcome {
  int accepted = 0, refused = 0;
};

void compareOn(const std::string& raw, const codec::Limits& limits, codec::SeriesBatch& got, codec::SeriesBatch& want,
               int iter, Outcome& o) {
  auto st_got = codec::decodeWriteRequest(raw, limits, got);
  auto st_want = codec::reference_v1::decodeWriteRequest(raw, limits, want);
  REQUIRE_MESSAGE(st_got.ok() == st_want.ok(), "iteration " << iter << ": accepted by one decoder only: "
                                                            << (st_got.ok() ? st_want.error() : st_got.error()));
  if (!st_want.ok()) {
    CHECK_MESSAGE(st_got.error() == st_want.error(), "iteration " << iter);
    ++o.refused;
    return;
  }
  ++o.accepted;
  const std::string diff = diffBatches(got, want);
  CHECK_MESSAGE(diff.empty(), "iteration " << iter << ": batches differ at " << diff);
}

}  // namespace

TEST_CASE("1.0 decoder: the same results and messages as the reference decoder") {
  Gen g(20261127);
  codec::SeriesBatch got, want;
  Outcome o;
  for (int iter = 0; iter < 30000; ++iter) {
    std::string raw = g.request();
    codec::Limits limits = g.one(3) ? g.limits() : codec::Limits{};
    compareOn(raw, limits, got, want, iter, o);
  }
  CHECK(o.accepted > 5000);
  CHECK(o.refused > 5000);
}

TEST_CASE("1.0 decoder: mutated bytes give the same results and messages as the reference decoder") {
  Gen g(7);
  codec::SeriesBatch got, want;
  Outcome o;
  for (int iter = 0; iter < 30000; ++iter) {
    std::string raw = g.request();
    g.mutate(raw);
    compareOn(raw, codec::Limits{}, got, want, iter, o);
  }
  CHECK(o.accepted > 3000);
  CHECK(o.refused > 3000);
}

TEST_CASE("1.0 decoder: non-canonical encodings of a canonical series decode identically") {
  // One series, sorted labels: canonical, then each non-canonical form the fast
  // path leaves to the general parser.
  auto canonicalLabel = [](std::string_view n, std::string_view v) {
    std::string l;
    putLen(l, 1, n);
    putLen(l, 2, v);
    return l;
  };
  std::string sample;
  putTag(sample, 1, wire::kI64);
  sample.append("\0\0\0\0\0\0\xf0?", 8);
  putTag(sample, 2, wire::kVarint);
  putVarint(sample, 1'700'000'000'000ULL);
  auto build = [&](std::string first_label) {
    std::string s;
    putLen(s, 1, first_label);
    putLen(s, 1, canonicalLabel("job", "api"));
    putLen(s, 2, sample);
    std::string req;
    putLen(req, 1, s);
    return req;
  };
  std::string value_first;
  putLen(value_first, 2, "up");
  putLen(value_first, 1, "__name__");
  std::string padded;
  putTag(padded, 1, wire::kLen);
  putPaddedVarint(padded, 8, 1);
  padded += "__name__";
  putLen(padded, 2, "up");
  std::string unknown = canonicalLabel("__name__", "up");
  putTag(unknown, 5, wire::kVarint);
  putVarint(unknown, 3);
  std::string repeated;
  putLen(repeated, 1, "zzz");
  putLen(repeated, 1, "__name__");
  putLen(repeated, 2, "x");
  putLen(repeated, 2, "up");

  codec::SeriesBatch canonical_batch;
  const std::string canonical = build(canonicalLabel("__name__", "up"));
  REQUIRE(codec::decodeWriteRequest(canonical, {}, canonical_batch).ok());
  REQUIRE(canonical_batch.series.size() == 1);
  for (const auto& first : {value_first, padded, unknown, repeated}) {
    const std::string raw = build(first);
    codec::SeriesBatch got, want;
    auto st = codec::decodeWriteRequest(raw, {}, got);
    REQUIRE(st.ok());
    REQUIRE(codec::reference_v1::decodeWriteRequest(raw, {}, want).ok());
    CHECK(diffBatches(got, want).empty());
    auto l = got.labelsOf(got.series[0]);
    REQUIRE(l.size() == 2);
    CHECK(l[0].name == "__name__");
    CHECK(l[0].value == "up");
    CHECK(got.series[0].hash == canonical_batch.series[0].hash);
    CHECK(got.series[0].input_hash == canonical_batch.series[0].input_hash);
    CHECK_FALSE(got.series[0].changed);
  }
}
