#include "text/byte_alphabet.h"

#include <array>

#include "text/utf8.h"

namespace frugal {

namespace {

bool stands_for_itself(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

struct Alphabet {
  std::array<char32_t, 256> codepoint{};
  std::array<int16_t, 512> byte_of{};  // code point (< 512) -> byte, -1 outside the alphabet
  Alphabet() {
    byte_of.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      codepoint[b] = static_cast<char32_t>(stands_for_itself(b) ? b : next++);
      byte_of[codepoint[b]] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

char32_t byte_to_codepoint(uint8_t b) { return alphabet().codepoint[b]; }

std::optional<std::string> alphabet_to_bytes(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const DecodedChar c = decode_utf8(text, i);
    if (!c.valid || c.codepoint >= 512 || alphabet().byte_of[c.codepoint] < 0) return std::nullopt;
    out.push_back(static_cast<char>(alphabet().byte_of[c.codepoint]));
    i += c.length;
  }
  return out;
}

std::string bytes_to_alphabet(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) append_utf8(out, byte_to_codepoint(b));
  return out;
}

}  // namespace frugal
