#pragma once
// tokenizer.json's added_tokens as Hugging Face's tokenizers matches them in text: before
// pre-tokenization, leftmost first and, among tokens starting at the same place, longest first; a
// match becomes the token's id directly, the text between matches goes on to the model. Tokens with
// `normalized` are looked for after normalization (in the normalized text), the others before.
// `single_word` tokens match only between non-word characters; `lstrip`/`rstrip` ones swallow the
// whitespace on their left/right.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace frugal {

struct AddedToken {
  std::string content;  // UTF-8, as written in tokenizer.json
  int32_t id = -1;
  bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = false;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // `tokens` with empty content are ignored (as Hugging Face does). `pattern(t)` is what is looked
  // for: t.content, or its normalized form for tokens matched after normalization.
  AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns);

  bool empty() const { return tokens_.empty(); }
  // Cuts `text` into stretches of plain text and matched tokens, in order. F: void(std::string_view
  // text, int32_t id), id -1 for plain text (never empty), else the token's id (its text then
  // includes any whitespace it swallowed).
  template <typename F>
  void split(std::string_view text, F&& emit) const {
    size_t start = 0;
    for (size_t at = 0; at < text.size();) {
      const Match m = find(text, at, start);
      if (m.token < 0) break;
      if (m.begin > start) emit(text.substr(start, m.begin - start), int32_t{-1});
      emit(text.substr(m.begin, m.end - m.begin), tokens_[static_cast<size_t>(m.token)].id);
      start = at = m.end;
    }
    if (start < text.size()) emit(text.substr(start), int32_t{-1});
  }

 private:
  struct Match {
    int token = -1;  // index into tokens_, -1 when none
    size_t begin = 0, end = 0;
  };
  // The next accepted match at or after `from`; `floor` is where the current plain stretch starts
  // (lstrip never reaches before it).
  Match find(std::string_view text, size_t from, size_t floor) const;
  bool fits_single_word(std::string_view text, size_t begin, size_t end) const;

  std::vector<AddedToken> tokens_;
  std::vector<std::string> patterns_;
  std::array<std::vector<int>, 256> by_first_byte_;  // token indices, longest pattern first
};

}  // namespace frugal
