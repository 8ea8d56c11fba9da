// libFuzzer target: arbitrary bytes as a GGUF file. Opening validates everything (magic, version,
// counts, string lengths, value kinds, duplicates, alignment, dimensions, types, offsets, overlaps,
// sizes); every typed getter is then asked for every key, and every tensor that opens is loaded
// as fp32 and as bf16. Then what frugal makes of a model file: the config.json of its architecture
// (models/gguf_model.h) and its tokenizer rebuilt as tokenizer.json + tokenizer_config.json
// (text/gguf_vocab.h), loaded by the tokenizer reader and asked to encode a text. Any input must end in success or a one-line frugal::Error, never a crash, a
// sanitizer report or a hang.   scripts/fuzz.sh runs it.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "core/error.h"
#include "io/gguf.h"
#include "models/gguf_model.h"
#include "text/gguf_vocab.h"
#include "text/hf_tokenizer.h"

namespace {
std::string scratch_path() {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/frugal-fuzz-" + std::to_string(::getpid()) + ".gguf";
}

// A broken promise of the reader: abort, so that libFuzzer keeps the input.
void require(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "fuzz_gguf: %s\n", what);
    std::abort();
  }
}

void expect_error_or_success(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const frugal::Error& e) {
    require(std::string(e.what()).find('\n') == std::string::npos, "an error message of more than one line");
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = scratch_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  // A ledger of its own for each input (a tensor cannot claim more bytes than the file holds, and
  // inputs are small).
  frugal::MemoryLedger ledger;
  frugal::LedgerScope scope(ledger);
  expect_error_or_success([&] {
    const frugal::GgufFile file = frugal::GgufFile::open(path);
    for (const auto& entry : file.metadata()) {
      const std::string& key = entry.first;  // (clang 14 lambdas cannot capture structured bindings)
      // Each getter either answers or refuses the kind; none may do anything else.
      expect_error_or_success([&] { file.get_string(key); });
      expect_error_or_success([&] { file.get_int(key); });
      expect_error_or_success([&] { file.get_number(key); });
      expect_error_or_success([&] { file.get_bool(key); });
      expect_error_or_success([&] { file.get_strings(key); });
      expect_error_or_success([&] { file.get_ints(key); });
      expect_error_or_success([&] { file.get_numbers(key); });
    }
    for (const frugal::GgufTensor& t : file.tensors()) {
      require(t.offset + t.bytes <= size, "a tensor past the end of the input");
      if (t.bytes > (64u << 20)) continue;  // real loads of small tensors only
      for (frugal::DType dtype : {frugal::DType::F32, frugal::DType::BF16}) {
        frugal::Tensor out = frugal::Tensor::empty(t.shape, dtype, frugal::MemCategory::Workspace);
        file.load_into(t.name, out);
      }
    }
    expect_error_or_success([&] { frugal::config_from_gguf(file); });
    expect_error_or_success([&] {
      const frugal::TokenizerFiles files = frugal::tokenizer_files_from_gguf(file);
      frugal::HfTokenizer tokenizer = frugal::HfTokenizer::from_json(files.tokenizer_json, path, files.config_json);
      tokenizer.encode("Hello, world! 123 <|endoftext|>");
    });
  });
  return 0;
}
