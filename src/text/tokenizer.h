#pragma once
// What the rest of frugal asks of a tokenizer, whichever files it comes from: GPT-2's vocab.json +
// merges.txt (text/bpe_tokenizer.h) or a Hugging Face tokenizer.json (text/hf_tokenizer.h: GPT-2,
// Llama 3, Qwen2, SmolLM and the models built on them).
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace frugal {

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  // The ids of `text` appended to `out`, without template tokens (BOS); `progress` (if given) hears
  // the bytes of `text` done, about every MiB.
  virtual void encode_append(std::string_view text, std::vector<int32_t>& out,
                             const std::function<void(size_t bytes_done)>& progress = {}) = 0;
  // The bytes of `ids`; Error for an id without a token.
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  virtual const std::string& token_bytes(int32_t id) const = 0;
  virtual int64_t vocab_size() const = 0;  // max id + 1
  // The token put between documents: GPT-2's <|endoftext|>, the model's EOS; -1 when there is none.
  virtual int32_t document_separator() const = 0;
  // What a generation's prompt starts with (Llama 3: BOS, as add_special_tokens=True; GPT-2: nothing).
  virtual std::vector<int32_t> prompt_prefix() const { return {}; }
  // A prompt's ids: the prefix, then its tokens; an empty result (an empty prompt without a prefix)
  // becomes the separator alone, as GPT-2 starts a document. Empty only when there is no separator.
  std::vector<int32_t> prompt_ids(std::string_view prompt);
};

// `path`'s tokenizer: a tokenizer.json file, a directory holding tokenizer.json (preferred: the
// format every model family ships) or GPT-2's pair of files, or a GGUF file (its tokenizer metadata,
// text/gguf_vocab.h). Error naming what is missing.
std::unique_ptr<TextTokenizer> load_tokenizer(const std::string& path);
// True when load_tokenizer(path) finds tokenizer files there.
bool tokenizer_present(const std::string& path);
// Copies the tokenizer files of directory `from` into `to` (atomically each): tokenizer.json and
// tokenizer_config.json, or GPT-2's pair (a GGUF's tokenizer: written as tokenizer.json and
// tokenizer_config.json); nothing to copy is an Error.
void copy_tokenizer_files(const std::string& from, const std::string& to);

}  // namespace frugal
