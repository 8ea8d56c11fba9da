#pragma once
// Tokenizers in GGUF files (issue 35): llama.cpp's "gpt2" tokenizer model is byte-level BPE, the
// family frugal reads from tokenizer.json. Its metadata:
//   tokenizer.ggml.model "gpt2", tokenizer.ggml.pre (which pre-tokenizer: "gpt-2", "llama-bpe",
//   "qwen2"), tokens (id order, byte-level text; added tokens as their content), token_type
//   (1 normal, 3 control = special added token, 4 user-defined = other added token, 5 unused = an
//   embedding row without a token), merges ("a b"), bos/eos/padding ids, add_bos_token, and the
//   chat template (tokenizer.chat_template).
// Both directions go through the files Hugging Face ships (tokenizer.json + tokenizer_config.json),
// so a GGUF's tokenizer is loaded by the same code, with the same tests, as a model directory's.
#include <string>

#include "io/gguf.h"

namespace frugal {

class HfTokenizer;

// A tokenizer as Hugging Face's two files hold it.
struct TokenizerFiles {
  std::string tokenizer_json;
  std::string config_json;  // tokenizer_config.json; "" when there is none
};

// The files of the tokenizer at `path`: a GGUF file (rebuilt from its metadata), a tokenizer.json (and
// the tokenizer_config.json beside it), or a directory with tokenizer.json or GPT-2's vocab.json +
// merges.txt (rewritten as the tokenizer.json GPT-2 ships). Error naming what is missing.
TokenizerFiles read_tokenizer_files(const std::string& path);

// tokenizer.json + tokenizer_config.json from a GGUF's tokenizer metadata. Errors name the file and
// what frugal cannot take: another tokenizer model (SentencePiece "llama", ...), a pre-tokenizer
// other than gpt-2 / llama-bpe / qwen2, a missing token list or merges.
TokenizerFiles tokenizer_files_from_gguf(const GgufFile& file);
// True when the GGUF carries a tokenizer (tokenizer.ggml.tokens).
bool gguf_has_tokenizer(const GgufFile& file);

// The tokenizer metadata of `files` for a model with `rows` embedding rows (ids without a token are
// written as "[PADn]", unused). `tokenizer` is the same tokenizer loaded (its BOS/EOS after the model's
// config.json overrides, whether it adds BOS). Error when the pre-tokenizer is none llama.cpp names.
void write_tokenizer_metadata(const TokenizerFiles& files, const HfTokenizer& tokenizer, int64_t rows,
                              GgufWriter& out);

}  // namespace frugal
