#pragma once
// GPT-2's byte-level BPE tokenizer, loaded from Hugging Face's vocab.json + merges.txt or OpenAI's
// encoder.json + vocab.bpe (the same two files under other names). Text is cut into pieces
// (text/pretokenizer.h); each piece's bytes start as single-byte tokens and the merge of lowest rank
// present is applied everywhere in the piece, left to right, until no listed merge is left
// (text/bpe_model.h, shared with tokenizer.json's text/hf_tokenizer.h). Any
// byte string encodes (invalid UTF-8 too) and decode(encode(x)) == x.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/bpe_model.h"
#include "text/tokenizer.h"

namespace frugal {

class BpeTokenizer : public TextTokenizer {
 public:
  static constexpr const char* kEndOfText = "<|endoftext|>";

  // From a directory holding vocab.json + merges.txt, or else encoder.json + vocab.bpe. Error naming
  // the file and the problem when they are missing, malformed or disagree with each other.
  static BpeTokenizer load(const std::string& dir);
  // True when `dir` holds either pair of files.
  static bool present(const std::string& dir);
  // Copies the pair of files `from` holds into `to` (atomically, under the same names).
  static void copy_files(const std::string& from, const std::string& to);
  // The same from the two files' contents (`source` names them in errors).
  static BpeTokenizer from_text(std::string_view vocab_json, std::string_view merges, const std::string& source);

  // The ids of `text`. "<|endoftext|>" in the text is text like any other (as in OpenAI's encoder);
  // documents are separated by appending end_of_text() between them.
  std::vector<int32_t> encode(std::string_view text);
  // The same, appended to `out`; `progress` (if given) hears the bytes of `text` done, every MiB.
  void encode_append(std::string_view text, std::vector<int32_t>& out,
                     const std::function<void(size_t bytes_done)>& progress = {}) override;
  // The bytes of `ids`; Error for an id outside the vocabulary.
  std::string decode(std::span<const int32_t> ids) const override;
  const std::string& token_bytes(int32_t id) const override;

  int64_t vocab_size() const override { return model_.id_limit(); }
  int32_t end_of_text() const { return end_of_text_; }  // -1 when the vocabulary has none
  int32_t document_separator() const override { return end_of_text_; }
  int64_t merge_count() const { return model_.merge_count(); }

 private:
  void read_vocabulary(std::string_view vocab_json, const std::string& source);
  void read_merges(std::string_view text, const std::string& source);

  BpeModel model_;
  int32_t end_of_text_ = -1;
};

}  // namespace frugal
