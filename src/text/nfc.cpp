#include "text/nfc.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

#include "core/error.h"
#include "text/utf8.h"

namespace frugal {

namespace {

const icu::Normalizer2& nfc() {
  static const icu::Normalizer2* instance = [] {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(status);
    check(U_SUCCESS(status) && n, std::string("ICU has no NFC normalizer: ") + u_errorName(status));
    return n;
  }();
  return *instance;
}

// The end of the run of valid UTF-8 starting at i (i itself when text[i] is invalid).
size_t valid_run_end(std::string_view text, size_t i) {
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const DecodedChar c = decode_utf8(text, i);
    if (!c.valid) break;
    i += c.length;
  }
  return i;
}

bool is_nfc(std::string_view run) {
  UErrorCode status = U_ZERO_ERROR;
  const bool yes = nfc().isNormalizedUTF8(icu::StringPiece(run.data(), static_cast<int32_t>(run.size())), status);
  return U_SUCCESS(status) && yes;
}

}  // namespace

bool nfc_normalize(std::string_view text, std::string& out) {
  check(text.size() < (size_t{1} << 31), "NFC normalization: a text of 2 GiB or more between added tokens");
  // ASCII, and any text whose valid runs are NFC, is left alone without a copy.
  bool changed = false;
  for (size_t i = 0; i < text.size() && !changed;) {
    const size_t end = valid_run_end(text, i);
    changed = end > i && !is_nfc(text.substr(i, end - i));
    i = end > i ? end : i + 1;
  }
  if (!changed) return false;
  out.clear();
  icu::StringByteSink<std::string> sink(&out);
  for (size_t i = 0; i < text.size();) {
    const size_t end = valid_run_end(text, i);
    if (end == i) {
      out.push_back(text[i++]);  // an invalid byte, kept
      continue;
    }
    UErrorCode status = U_ZERO_ERROR;
    nfc().normalizeUTF8(0, icu::StringPiece(text.data() + i, static_cast<int32_t>(end - i)), sink, nullptr, status);
    check(U_SUCCESS(status), std::string("NFC normalization failed: ") + u_errorName(status));
    i = end;
  }
  return true;
}

}  // namespace frugal
