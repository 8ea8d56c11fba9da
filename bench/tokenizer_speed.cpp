// Tokenizer throughput for bench/tokenizer_speed.sh: GPT-2's BPE over the fortunes corpus, one
// thread, each fortune record encoded on its own (as the JavaScript reference is timed). Prints one
// JSON object: bytes, records, tokens, and the seconds of a first pass (a fresh tokenizer: every
// piece is new to its cache) and of the best of `rounds` later passes (pieces cached).
//   tokenizer_speed TOKENIZER_DIR [ROUNDS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "io/text_corpus.h"
#include "text/bpe_tokenizer.h"
#include "text/documents.h"

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: tokenizer_speed TOKENIZER_DIR [ROUNDS]\n");
    return 2;
  }
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  std::vector<std::string> files;
  for (const std::string& path : frugal::list_fortune_files()) files.push_back(frugal::read_file(path));
  std::vector<std::string_view> records;
  size_t bytes = 0;
  for (const std::string& f : files)
    for (std::string_view r : frugal::split_documents(f, frugal::DocumentSplit::Fortunes)) {
      records.push_back(r);
      bytes += r.size();
    }
  frugal::BpeTokenizer tokenizer = frugal::BpeTokenizer::load(argv[1]);
  size_t tokens = 0;
  auto start = std::chrono::steady_clock::now();
  for (std::string_view r : records) tokens += tokenizer.encode(r).size();
  const double cold = seconds_since(start);
  double warm = 1e30;
  for (int k = 0; k < rounds; ++k) {
    start = std::chrono::steady_clock::now();
    for (std::string_view r : records) tokenizer.encode(r);
    warm = std::min(warm, seconds_since(start));
  }
  std::printf("{\"bytes\": %zu, \"records\": %zu, \"tokens\": %zu, \"cold_s\": %.4f, \"warm_s\": %.4f}\n", bytes,
              records.size(), tokens, cold, warm);
  return 0;
}
