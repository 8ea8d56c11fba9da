#pragma once
// A Hugging Face tokenizer.json of the byte-level BPE kind: GPT-2, Llama 3, Qwen2, SmolLM and the
// models built on them. The pipeline is Hugging Face's tokenizers':
//   added tokens  matched in the raw text first (text/added_tokens.h): each becomes its id;
//   normalizer    null or NFC (text/nfc.h), on the text between added tokens;
//   pre_tokenizer ByteLevel, Split (PCRE2), Digits, Sequence (text/hf_pretokenizer.h);
//   model         BPE over raw bytes with the file's merges and ignore_merges (text/bpe_model.h);
//   decoder       ByteLevel: the tokens' bytes, concatenated.
// encode() is Hugging Face's encode(text, add_special_tokens=False): the post-processor's template
// tokens (Llama 3's <|begin_of_text|>) are NOT added; template_prefix()/template_suffix() hold them
// for the caller that wants add_special_tokens=True (prompts for generation). That keeps encode
// concatenable: the ids of a long text are those of its documents one after another.
// Any byte string encodes (bytes that are not UTF-8 go through the byte tokens); decode(encode(x))
// == x, or NFC(x) for a normalizing tokenizer, unless an added token with lstrip/rstrip swallowed
// whitespace (as in Hugging Face). One tokenizer per thread: encode caches pieces and reuses PCRE2's
// match data.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/added_tokens.h"
#include "text/bpe_model.h"
#include "text/hf_pretokenizer.h"
#include "text/tokenizer.h"

namespace frugal {

class HfTokenizer : public TextTokenizer {
 public:
  static constexpr const char* kFileName = "tokenizer.json";

  // From `path`: a tokenizer.json file, or a directory that holds one. A tokenizer_config.json beside
  // it names the BOS and EOS tokens. Error naming the file and the problem when it is missing,
  // malformed, or not byte-level BPE (WordPiece, Unigram, Llama 2's SentencePiece-style BPE, ...).
  static HfTokenizer load(const std::string& path);
  // True when `dir` holds a tokenizer.json.
  static bool present(const std::string& dir);
  // The same from the files' contents (`source` names them in errors; `config_json` may be empty).
  static HfTokenizer from_json(std::string_view tokenizer_json, const std::string& source,
                               std::string_view config_json = {});

  // The ids of `text`, without template tokens (see above). Added tokens written in the text,
  // special ones included, become their ids, as in Hugging Face (unless split_special_tokens).
  std::vector<int32_t> encode(std::string_view text);
  // The same, appended to `out`; `progress` (if given) hears the bytes of `text` done, about every MiB.
  void encode_append(std::string_view text, std::vector<int32_t>& out,
                     const std::function<void(size_t bytes_done)>& progress = {}) override;
  // The bytes of `ids` (an added token's are its content); Error for an id without a token.
  std::string decode(std::span<const int32_t> ids) const override;
  const std::string& token_bytes(int32_t id) const override;
  // The id of a token written as in tokenizer.json (an added token's content, or a vocabulary entry
  // in GPT-2's byte alphabet); -1 when there is none.
  int32_t token_id(std::string_view written) const;
  bool is_special(int32_t id) const;

  int64_t vocab_size() const override { return model_.id_limit(); }  // max id + 1, added tokens included
  int32_t document_separator() const override { return eos_id_; }
  std::vector<int32_t> prompt_prefix() const override { return template_prefix_; }
  bool normalizes_nfc() const { return nfc_; }
  int64_t merge_count() const { return model_.merge_count(); }

  // BOS/EOS: tokenizer_config.json's bos_token/eos_token, else the template's first token before /
  // after the text (EOS: else "<|endoftext|>" when the file has it, as GPT-2 and Qwen2 do); -1 when
  // none. A model's config.json (bos_token_id, eos_token_id) may override them through the setters.
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  void set_bos_id(int32_t id);
  void set_eos_id(int32_t id);
  // A model's config.json's bos_token_id / eos_token_id (eos may be a list: its first entry) over the
  // tokenizer's own, as Hugging Face does (Llama 3: 128000, 128001).
  void apply_model_config(const nlohmann::json& config);
  // The ids the post-processor puts before / after a single text (TemplateProcessing), and whether
  // that includes BOS (Llama 3: yes; GPT-2, Qwen2: no).
  const std::vector<int32_t>& template_prefix() const { return template_prefix_; }
  const std::vector<int32_t>& template_suffix() const { return template_suffix_; }
  bool adds_bos() const;

  // Hugging Face's split_special_tokens: special tokens written in the text are text, not ids (for
  // training on text that must not inject control tokens). Off by default, as in Hugging Face.
  void set_split_special_tokens(bool on);

 private:
  void read_model(const nlohmann::json& model, const std::string& source);
  void read_added_tokens(const nlohmann::json& list, const std::string& source);
  void read_post_processor(const nlohmann::json& j, const std::string& source);
  void read_special_names(std::string_view config_json, const std::string& source);
  void build_matchers();
  int32_t checked_id(int32_t id, const char* what) const;

  BpeModel model_;
  HfPreTokenizer pre_tokenizer_;
  bool nfc_ = false;
  std::vector<AddedToken> added_;
  AddedTokenMatcher raw_matcher_, normalized_matcher_;  // tokens matched before / after normalization
  bool split_special_tokens_ = false;
  std::vector<int32_t> template_prefix_, template_suffix_;
  int32_t bos_id_ = -1, eos_id_ = -1;
};

}  // namespace frugal
