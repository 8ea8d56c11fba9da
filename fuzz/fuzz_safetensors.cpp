// libFuzzer target: arbitrary bytes as a safetensors file. Opening validates the header (length,
// JSON, dtypes, shapes, offsets, overlaps, sizes); every tensor that opens is then loaded as fp32
// and into a fresh tensor of its own type. Any input must end in success or a frugal::Error,
// never a crash, a sanitizer report or a hang.   scripts/fuzz.sh runs it.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"

namespace {
std::string scratch_path() {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/frugal-fuzz-" + std::to_string(::getpid()) + ".safetensors";
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = scratch_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  // A ledger of its own for each input (the reader's loads are real: a tensor cannot claim more
  // bytes than the file holds, and inputs are small).
  frugal::MemoryLedger ledger;
  frugal::LedgerScope scope(ledger);
  try {
    const frugal::SafetensorsFile file = frugal::SafetensorsFile::open(path);
    for (const std::string& name : file.names()) {
      const frugal::SafeTensor& info = file.info(name);
      if (info.end - info.begin > (64u << 20)) continue;  // real loads of small tensors only
      if (info.dtype == frugal::DType::I32) {
        file.load(name, frugal::MemCategory::Workspace, frugal::DType::I32);
      } else {
        file.load(name, frugal::MemCategory::Workspace, frugal::DType::F32);
        file.load(name, frugal::MemCategory::Workspace, frugal::DType::BF16);
      }
    }
  } catch (const frugal::Error&) {
  }
  return 0;
}
