#pragma once
// tokenizer.json's pre_tokenizer for byte-level BPE: a chain of steps, each cutting every piece the
// step before made. Supported (what GPT-2, Llama 3, Qwen2 and SmolLM2 use):
//   ByteLevel   add_prefix_space: a space before every piece that lacks one; use_regex: GPT-2's
//               expression (text/regex_splitter.h). Its byte-to-alphabet mapping is implicit: the
//               vocabulary is kept as raw bytes (text/bpe_model.h).
//   Split       a Regex (or String) pattern, behavior "Isolated", invert false.
//   Digits      runs of numeric characters (Unicode N, as Rust's char::is_numeric), or each one
//               alone with individual_digits.
//   Sequence    of the above.
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "text/regex_splitter.h"

namespace frugal {

class HfPreTokenizer {
 public:
  // From the "pre_tokenizer" value; Error naming `source` and the type for anything else. Byte-level
  // BPE needs a ByteLevel step: its absence is an error too (Llama 2's Metaspace BPE, say).
  static HfPreTokenizer from_json(const nlohmann::json& j, const std::string& source);

  // Calls piece(p) for every piece of `text` (non-empty), in order. F: void(std::string_view).
  template <typename F>
  void split(std::string_view text, F&& piece) const {
    run(0, text, piece);
  }

 private:
  struct Step {
    enum class Kind { PrefixSpace, Regex, Digits } kind;
    size_t regex = 0;        // Regex: index into regexes_
    bool individual = false;  // Digits: one piece per digit
  };
  void add(const nlohmann::json& j, const std::string& source, bool& byte_level);

  template <typename F>
  void run(size_t step, std::string_view piece, F& emit) const {
    if (step == steps_.size()) return emit(piece);
    const Step& s = steps_[step];
    const auto next = [&](std::string_view p) { run(step + 1, p, emit); };
    if (s.kind == Step::Kind::Regex) return regexes_[s.regex].split(piece, next);
    if (s.kind == Step::Kind::Digits) return split_digits(piece, s.individual, next);
    if (piece.starts_with(' ')) return next(piece);
    std::string spaced(1, ' ');  // ByteLevel's add_prefix_space (rare: a copy is fine)
    next(spaced.append(piece));
  }
  template <typename F>
  static void split_digits(std::string_view text, bool individual, F&& piece) {
    size_t start = 0;
    bool in_digits = false;
    for (size_t i = 0; i < text.size();) {
      const size_t length = numeric_at(text, i);
      const bool digit = length > 0;
      if (i > start && (digit != in_digits || (digit && individual))) {
        piece(text.substr(start, i - start));
        start = i;
      }
      in_digits = digit;
      i += digit ? length : 1;
    }
    if (start < text.size()) piece(text.substr(start));
  }
  // The byte length of the numeric character at text[i], 0 when it is not one.
  static size_t numeric_at(std::string_view text, size_t i);

  std::vector<Step> steps_;
  std::vector<RegexSplitter> regexes_;
};

}  // namespace frugal
