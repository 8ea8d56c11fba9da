#pragma once
// Hugging Face's Split pre-tokenizer with behavior "Isolated": every match of a regular expression is
// a piece, and so is every stretch of text between two matches. The expression (Oniguruma syntax in
// tokenizer.json; the patterns of GPT-2, Llama 3, Qwen2 mean the same in PCRE2) is compiled by PCRE2
// in UTF mode with Unicode properties (\s is White_Space, \p{L} a letter), JIT-compiled where the
// machine allows. Bytes that are not valid UTF-8 match nothing, so they end up in the stretches
// between matches: any byte string is cut, and the pieces concatenate to it.
#include <algorithm>
#include <memory>
#include <string>
#include <string_view>

#include "text/utf8.h"

namespace frugal {

class RegexSplitter {
 public:
  // Error "<source>: <PCRE2's message> at offset N of the pattern ..." for an invalid expression.
  // `literal` takes `pattern` as plain text (the String form of Split's pattern).
  RegexSplitter(const std::string& pattern, const std::string& source, bool literal = false);
  ~RegexSplitter();
  RegexSplitter(RegexSplitter&&) noexcept;
  RegexSplitter& operator=(RegexSplitter&&) noexcept;

  // Calls piece(p) for every piece of `text`, in order. F: void(std::string_view).
  template <typename F>
  void split(std::string_view text, F&& piece) const {
    size_t start = 0;
    for (size_t at = 0; at <= text.size();) {
      size_t match_start, match_end;
      if (!find(text, at, match_start, match_end)) break;
      if (match_start > start) piece(text.substr(start, match_start - start));
      if (match_end > match_start) piece(text.substr(match_start, match_end - match_start));
      start = std::max(start, match_end);
      // An empty match would find itself again: step over one character.
      at = match_end > at ? match_end : at + (at < text.size() ? decode_utf8(text, at).length : 1);
    }
    if (start < text.size()) piece(text.substr(start));
  }

 private:
  // The first match at or after `from`; false when none.
  bool find(std::string_view text, size_t from, size_t& begin, size_t& end) const;

  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace frugal
