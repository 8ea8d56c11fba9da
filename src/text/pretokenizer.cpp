#include "text/pretokenizer.h"

#include <unicode/uchar.h>

#include <array>

#include "text/utf8.h"

namespace frugal {

namespace {

enum class CharClass : uint8_t { Letter, Number, Space, Other };

// JavaScript's \s: WhiteSpace and LineTerminator (ECMA-262), which is not Unicode's White_Space
// (U+FEFF is in it, U+0085 is not).
bool js_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

CharClass classify_codepoint(char32_t c) {
  if (js_space(c)) return CharClass::Space;
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_UPPERCASE_LETTER: case U_LOWERCASE_LETTER: case U_TITLECASE_LETTER: case U_MODIFIER_LETTER:
    case U_OTHER_LETTER: return CharClass::Letter;
    case U_DECIMAL_DIGIT_NUMBER: case U_LETTER_NUMBER: case U_OTHER_NUMBER: return CharClass::Number;
    default: return CharClass::Other;
  }
}

const std::array<CharClass, 128>& ascii_classes() {
  static const std::array<CharClass, 128> table = [] {
    std::array<CharClass, 128> t{};
    for (int c = 0; c < 128; ++c) t[c] = classify_codepoint(static_cast<char32_t>(c));
    return t;
  }();
  return table;
}

struct Char {
  CharClass cls;
  size_t length;
};

Char char_at(std::string_view text, size_t i) {
  const unsigned char b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) return {ascii_classes()[b], 1};
  const DecodedChar c = decode_utf8(text, i);
  return {c.valid ? classify_codepoint(c.codepoint) : CharClass::Other, c.length};
}

// The end of the run of characters of class `cls` starting at i.
size_t run_end(std::string_view text, size_t i, CharClass cls) {
  while (i < text.size()) {
    const Char c = char_at(text, i);
    if (c.cls != cls) break;
    i += c.length;
  }
  return i;
}

// 's 't 're 've 'm 'll 'd at i: their length, else 0.
size_t contraction(std::string_view text, size_t i) {
  if (text[i] != '\'' || i + 1 >= text.size()) return 0;
  const char a = text[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= text.size()) return 0;
  const char b = text[i + 2];
  return (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') ? 3 : 0;
}

// The end of the piece that starts at i.
size_t piece_end(std::string_view text, size_t i) {
  if (const size_t n = contraction(text, i)) return i + n;
  const Char first = char_at(text, i);
  if (text[i] == ' ' && i + 1 < text.size()) {  // " ?" then a run, unless a space follows
    const Char next = char_at(text, i + 1);
    if (next.cls != CharClass::Space) return run_end(text, i + 1, next.cls);
  }
  if (first.cls != CharClass::Space) return run_end(text, i, first.cls);
  // \s+(?!\S): a whitespace run followed by a non-space gives its last character to that piece
  // (the next piece then starts with it); a single whitespace character is a piece (\s+).
  size_t end = i, last = i;
  while (end < text.size()) {
    const Char c = char_at(text, end);
    if (c.cls != CharClass::Space) break;
    last = end;
    end += c.length;
  }
  return end < text.size() && last > i ? last : end;
}

}  // namespace

void pretokenize(std::string_view text, const std::function<void(std::string_view)>& piece) {
  for (size_t i = 0; i < text.size();) {
    const size_t end = piece_end(text, i);
    piece(text.substr(i, end - i));
    i = end;
  }
}

}  // namespace frugal
