// libFuzzer target: arbitrary bytes as a token file (`frugal tokenize`, text/token_file.h), read as
// `frugal train --data` reads it: recognised by its magic, mapped, then windows drawn into batches.
// Every id is also copied out and must be below the header's vocabulary size (opening checks that).
// Any input must end in success or a frugal::Error, never a crash, a sanitizer report or a hang.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/token_file.h"
#include "train/data.h"
#include "train/token_sequence.h"

namespace {
std::string scratch_path() {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/frugal-fuzz-" + std::to_string(::getpid()) + ".tok";
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = scratch_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  frugal::MemoryLedger ledger;
  frugal::LedgerScope scope(ledger);
  try {
    if (!frugal::is_token_file(path)) return 0;  // --data would read it as text
    std::unique_ptr<frugal::TokenSequence> tokens = frugal::token_file_sequence(path);
    std::vector<int32_t> block(64);
    for (int64_t i = 0; i < tokens->size(); i += 64) {
      const int64_t n = std::min<int64_t>(64, tokens->size() - i);
      tokens->copy(i, n, block.data());
      for (int64_t k = 0; k < n; ++k)
        if (block[k] < 0 || block[k] >= tokens->vocab_bound()) std::abort();
    }
    const int64_t vocab = tokens->vocab_bound();
    frugal::TokenWindows windows(std::move(tokens), /*context=*/4, /*seed=*/1, "fuzz token file");
    for (int64_t step = 0; step < 3; ++step) {
      const frugal::Batch b = windows.batch(step, 2);
      for (int64_t k = 0; k < 2 * 4; ++k)
        if (b.inputs.i32()[k] >= vocab || b.targets.i32()[k] >= vocab) std::abort();
    }
  } catch (const frugal::Error&) {
  }
  return 0;
}
