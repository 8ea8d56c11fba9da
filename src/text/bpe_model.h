#pragma once
// The byte-level BPE model both tokenizers share (text/bpe_tokenizer.h: GPT-2's two files;
// text/hf_tokenizer.h: Hugging Face's tokenizer.json): tokens as raw byte strings with their ids, the
// ranked merges, and the encoding of one pre-tokenized piece. A piece's bytes start as single-byte
// tokens and the merge of lowest rank present is applied everywhere in the piece, left to right,
// until no listed merge is left; repeated pieces come from a cache.
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace frugal {

class BpeModel {
 public:
  // Token `bytes` gets `id` (>= 0). False when the id is taken already (the caller reports it).
  // Tokens with `matchable` false (special tokens outside the byte alphabet) decode but are never
  // produced by BPE.
  bool add_token(int32_t id, std::string bytes, bool matchable = true);
  // The id of the token whose bytes are `bytes`, -1 when none.
  int32_t find(std::string_view bytes) const;
  // Looks up the 256 single-byte tokens: the first byte that has none, or -1 when all are there.
  int missing_byte_token();
  // The next merge (its rank is the number of merges added before): the tokens written `left` and
  // `right` in GPT-2's byte alphabet make their concatenation. "" on success, else the problem
  // ("'xyz' is not in the vocabulary", "makes 'bc', which the vocabulary lacks"). A repeated pair
  // keeps its first rank.
  std::string add_merge(std::string_view left, std::string_view right);
  // Llama 3's ignore_merges: a piece that is a token itself is that token, whatever the merges say.
  void set_ignore_merges(bool on) { ignore_merges_ = on; }

  // Appends the ids of one pre-tokenized piece (any bytes) to `out`.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out);

  // The bytes of token `id`; nullptr when no token has that id.
  const std::string* token(int32_t id) const {
    return id >= 0 && id < static_cast<int32_t>(tokens_.size()) && present_[static_cast<size_t>(id)]
               ? &tokens_[static_cast<size_t>(id)] : nullptr;
  }
  int64_t id_limit() const { return static_cast<int64_t>(tokens_.size()); }  // max id + 1
  int64_t token_count() const { return token_count_; }
  int64_t merge_count() const { return static_cast<int64_t>(merges_.size()); }

 private:
  struct Merge {
    int32_t rank, merged;
  };
  void apply_merges(std::vector<int32_t>& symbols) const;
  static uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

  // Heterogeneous lookup: a piece (string_view) finds its cached ids without a string copy.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::string> tokens_;  // id -> bytes
  std::vector<bool> present_;        // id -> has a token (ids may have gaps)
  int64_t token_count_ = 0;
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> ids_;
  std::array<int32_t, 256> byte_ids_{};                  // the single-byte tokens
  std::unordered_map<uint64_t, Merge> merges_;           // (left id, right id) -> rank, merged id
  std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> cache_;  // piece -> ids
  bool ignore_merges_ = false;
};

}  // namespace frugal
