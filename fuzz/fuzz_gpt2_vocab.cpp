// libFuzzer target: GPT-2's vocab.json + merges.txt. The input is the two files with a NUL byte
// between them (JSON text has no raw NUL, so the first one splits them; none: merges.txt is empty).
// Loading must end in a tokenizer or a frugal::Error; a tokenizer that loads encodes fixed texts and
// must decode them back byte for byte (the documented decode(encode(x)) == x).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "text/bpe_tokenizer.h"

namespace {

using namespace std::string_literals;

const std::vector<std::string> kTexts = {
    "Hello, world! It's 2026: 12345 tokens.\n\n  \tx  <|endoftext|>",
    "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x99\x82 I've we'll ABC abc abcabc",
    "\xFF\xFE\xC3(\xE2\x82 \xF0\x9F\x99 \xED\xA0\x80\x00" "end"s,  // invalid UTF-8, NUL
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t cut = input.find('\0');
  const std::string_view vocab = input.substr(0, cut);
  const std::string_view merges = cut == std::string_view::npos ? std::string_view() : input.substr(cut + 1);
  try {
    frugal::BpeTokenizer t = frugal::BpeTokenizer::from_text(vocab, merges, "fuzz vocab.json and merges.txt");
    for (const std::string& text : kTexts)
      if (t.decode(t.encode(text)) != text) std::abort();
  } catch (const frugal::Error&) {
  }
  return 0;
}
