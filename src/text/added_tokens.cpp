#include "text/added_tokens.h"

#include <unicode/uchar.h>

#include <algorithm>

#include "text/utf8.h"

namespace frugal {

namespace {

// The character that ends text[0, end) (nullopt-like `valid` false when there is none or it is not
// valid UTF-8).
DecodedChar char_before(std::string_view text, size_t end) {
  size_t begin = end;
  while (begin > 0 && end - begin < 4) {
    --begin;
    if ((static_cast<unsigned char>(text[begin]) & 0xC0) != 0x80) break;
  }
  if (begin == end) return {};
  const DecodedChar c = decode_utf8(text, begin);
  return c.valid && begin + c.length == end ? c : DecodedChar{};
}

// Rust regex's \w (which Hugging Face's single_word test uses): alphabetic, marks, decimal digits,
// connector punctuation, joiners.
bool word_char(const DecodedChar& c) {
  if (!c.valid) return false;
  const auto cp = static_cast<UChar32>(c.codepoint);
  const int8_t type = u_charType(cp);
  return u_hasBinaryProperty(cp, UCHAR_ALPHABETIC) || type == U_NON_SPACING_MARK || type == U_ENCLOSING_MARK ||
         type == U_COMBINING_SPACING_MARK || type == U_DECIMAL_DIGIT_NUMBER || type == U_CONNECTOR_PUNCTUATION ||
         u_hasBinaryProperty(cp, UCHAR_JOIN_CONTROL);
}

bool white_space(const DecodedChar& c) { return c.valid && u_hasBinaryProperty(static_cast<UChar32>(c.codepoint), UCHAR_WHITE_SPACE); }

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns) {
  for (size_t k = 0; k < tokens.size(); ++k) {
    if (patterns[k].empty()) continue;
    const auto first = static_cast<unsigned char>(patterns[k][0]);
    by_first_byte_[first].push_back(static_cast<int>(tokens_.size()));
    tokens_.push_back(std::move(tokens[k]));
    patterns_.push_back(std::move(patterns[k]));
  }
  for (auto& candidates : by_first_byte_)
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](int a, int b) { return patterns_[a].size() > patterns_[b].size(); });
}

bool AddedTokenMatcher::fits_single_word(std::string_view text, size_t begin, size_t end) const {
  const bool starts_word = begin > 0 && word_char(char_before(text, begin));
  const bool ends_word = end < text.size() && word_char(decode_utf8(text, end));
  return !starts_word && !ends_word;
}

AddedTokenMatcher::Match AddedTokenMatcher::find(std::string_view text, size_t from, size_t floor) const {
  for (size_t p = from; p < text.size(); ++p) {
    const auto& candidates = by_first_byte_[static_cast<unsigned char>(text[p])];
    int found = -1;
    for (int k : candidates)
      if (text.substr(p).starts_with(patterns_[k])) {
        found = k;
        break;
      }
    if (found < 0) continue;
    const AddedToken& t = tokens_[static_cast<size_t>(found)];
    Match m{found, p, p + patterns_[found].size()};
    if (t.single_word && !fits_single_word(text, m.begin, m.end)) {
      p = m.end - 1;  // matching goes on after the rejected match (non-overlapping search)
      continue;
    }
    if (t.lstrip)
      for (DecodedChar c; m.begin > floor && white_space(c = char_before(text, m.begin));) m.begin -= c.length;
    if (t.rstrip)
      for (DecodedChar c; m.end < text.size() && white_space(c = decode_utf8(text, m.end));) m.end += c.length;
    return m;
  }
  return {};
}

}  // namespace frugal
