// libFuzzer target: every value normalizer, with the default options and with the other
// settings, on the input taken as a label value. Asserts: no crash; true only when the value
// changes; valid UTF-8 in gives valid UTF-8 out; idempotent (a normalized value is kept).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "codec/wire.h"
#include "pipeline/normalize/normalizers.h"

using namespace cardinal::pipeline::normalize;

namespace {

void printEscaped(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      std::fputc(c, stderr);
    } else {
      std::fprintf(stderr, "\\x%02x", c);
    }
  }
}

[[noreturn]] void fail(const char* what, Normalizer n, std::string_view in, std::string_view out) {
  std::fprintf(stderr, "%s: %s: \"", what, std::string(normalizerName(n)).c_str());
  printEscaped(in);
  std::fputs("\" -> \"", stderr);
  printEscaped(out);
  std::fputs("\"\n", stderr);
  abort();
}

Options makeOptions(bool defaults) {
  Options o;
  if (!defaults) {
    o.ip_to_network = false;
    o.ipv4_prefix = 16;
    o.ipv6_prefix = 48;
    o.email_keep_domain = false;
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const bool utf8 = cardinal::codec::wire::validUtf8(in);
  static const Options kOptions[] = {makeOptions(true), makeOptions(false)};
  std::string out, again;
  for (const Options& opts : kOptions) {
    for (int k = 0; k <= static_cast<int>(Normalizer::kAuto); ++k) {
      const auto n = static_cast<Normalizer>(k);
      if (!normalize(n, in, out, opts)) continue;
      if (out == in) fail("true without a change", n, in, out);
      if (utf8 && !cardinal::codec::wire::validUtf8(out)) fail("invalid UTF-8 out", n, in, out);
      if (normalize(n, out, again, opts)) fail("not idempotent", n, out, again);
    }
  }
  if ((classify(in) == Shape::kEmpty) != in.empty()) abort();
  return 0;
}
