#pragma once
// GPT-2's byte-level BPE tokenizer, loaded from Hugging Face's vocab.json + merges.txt or OpenAI's
// encoder.json + vocab.bpe (the same two files under other names). Text is cut into pieces
// (text/pretokenizer.h); each piece's bytes start as single-byte tokens and the merge of lowest rank
// present is applied everywhere in the piece, left to right, until no listed merge is left. Any
// byte string encodes (invalid UTF-8 too) and decode(encode(x)) == x.
#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace frugal {

class BpeTokenizer {
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
                     const std::function<void(size_t bytes_done)>& progress = {});
  // The bytes of `ids`; Error for an id outside the vocabulary.
  std::string decode(std::span<const int32_t> ids) const;
  const std::string& token_bytes(int32_t id) const;

  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }
  int32_t end_of_text() const { return end_of_text_; }  // -1 when the vocabulary has none
  int64_t merge_count() const { return static_cast<int64_t>(merges_.size()); }

 private:
  struct Merge {
    int32_t rank, merged;
  };
  void read_vocabulary(std::string_view vocab_json, const std::string& source);
  void read_merges(std::string_view text, const std::string& source);
  void encode_piece(std::string_view piece, std::vector<int32_t>& out);
  void apply_merges(std::vector<int32_t>& symbols) const;
  static uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

  // Heterogeneous lookup: a piece (string_view) finds its cached ids without a string copy.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::string> tokens_;  // id -> bytes
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> ids_;
  std::array<int32_t, 256> byte_ids_{};                  // the single-byte tokens
  std::unordered_map<uint64_t, Merge> merges_;           // (left id, right id) -> rank, merged id
  std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> cache_;  // piece -> ids
  int32_t end_of_text_ = -1;
};

}  // namespace frugal
