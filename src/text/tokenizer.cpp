#include "text/tokenizer.h"

#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "text/bpe_tokenizer.h"
#include "text/gguf_vocab.h"
#include "text/hf_tokenizer.h"

namespace frugal {

namespace fs = std::filesystem;

namespace {
bool is_tokenizer_json(const std::string& path) {
  return fs::is_regular_file(path) && fs::path(path).filename() == HfTokenizer::kFileName;
}
}  // namespace

std::vector<int32_t> TextTokenizer::prompt_ids(std::string_view prompt) {
  std::vector<int32_t> ids = prompt_prefix();
  encode_append(prompt, ids);
  if (ids.empty() && document_separator() >= 0) ids.push_back(document_separator());
  return ids;
}

std::unique_ptr<TextTokenizer> load_tokenizer(const std::string& path) {
  if (is_gguf_file(path)) {  // rebuilt from its metadata as Hugging Face's two files
    const TokenizerFiles files = tokenizer_files_from_gguf(GgufFile::open(path));
    return std::make_unique<HfTokenizer>(HfTokenizer::from_json(files.tokenizer_json, path, files.config_json));
  }
  if (is_tokenizer_json(path) || HfTokenizer::present(path)) return std::make_unique<HfTokenizer>(HfTokenizer::load(path));
  check(fs::is_directory(path), "tokenizer " + path + " does not exist");
  check(BpeTokenizer::present(path), path + ": no tokenizer files (expected tokenizer.json, vocab.json + merges.txt, "
                                            "or encoder.json + vocab.bpe)");
  return std::make_unique<BpeTokenizer>(BpeTokenizer::load(path));
}

bool tokenizer_present(const std::string& path) {
  if (is_gguf_file(path)) return gguf_has_tokenizer(GgufFile::open(path));
  return is_tokenizer_json(path) || HfTokenizer::present(path) || BpeTokenizer::present(path);
}

void copy_tokenizer_files(const std::string& from, const std::string& to) {
  if (is_gguf_file(from)) {  // a GGUF's tokenizer leaves as the files Hugging Face reads
    const TokenizerFiles files = tokenizer_files_from_gguf(GgufFile::open(from));
    write_file_atomic((fs::path(to) / HfTokenizer::kFileName).string(), files.tokenizer_json);
    write_file_atomic((fs::path(to) / "tokenizer_config.json").string(), files.config_json);
    return;
  }
  // A tokenizer.json named directly: it and the tokenizer_config.json beside it.
  const fs::path dir = is_tokenizer_json(from) ? fs::path(from).parent_path() : fs::path(from);
  if (!HfTokenizer::present(dir.string())) return BpeTokenizer::copy_files(from, to);
  if (fs::equivalent(dir, to)) return;
  for (const char* name : {HfTokenizer::kFileName, "tokenizer_config.json"})
    if (fs::is_regular_file(dir / name)) write_file_atomic((fs::path(to) / name).string(), read_file((dir / name).string()));
  // GPT-2 directories often hold both formats: keep the pair too.
  if (BpeTokenizer::present(dir.string())) BpeTokenizer::copy_files(dir.string(), to);
}

}  // namespace frugal
