#pragma once
// Strict UTF-8 decoding for the tokenizer: overlong forms, surrogates and code points above
// U+10FFFF are invalid, and an invalid sequence is one byte long (so any byte string splits into
// characters and invalid bytes, and nothing is lost).
#include <cstddef>
#include <string>
#include <string_view>

namespace frugal {

struct DecodedChar {
  char32_t codepoint = 0;  // meaningful when valid
  size_t length = 1;       // bytes taken: 1 for an invalid byte
  bool valid = false;
};

// The character starting at text[i] (i < text.size()).
DecodedChar decode_utf8(std::string_view text, size_t i);

void append_utf8(std::string& out, char32_t codepoint);

}  // namespace frugal
