// libFuzzer target: arbitrary bytes as a chat JSONL file, read with every format option, failing
// and skipping bad lines. Any input must end in examples or a frugal::Error with a one-line message
// (the JSON parser's own exceptions must not get out), never a crash, a sanitizer report or a hang;
// what is read must hold the API's promises (known roles, at most 10 reasons kept, line numbers
// rising).   scripts/fuzz.sh runs it.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/error.h"
#include "text/chat_records.h"

namespace {

void require(bool cond) {
  if (!cond) std::abort();  // a broken promise: libFuzzer reports it as a crash with the input
}

void check_records(const frugal::ChatRecords& r, const frugal::ChatReadOptions& options) {
  require(!r.examples.empty() && r.format != frugal::ChatFormat::Auto);
  require(options.format == frugal::ChatFormat::Auto || r.format == options.format);
  require(r.bad_reasons.size() == std::min<size_t>(10, static_cast<size_t>(r.bad_skipped)));
  require(options.skip_bad || r.bad_skipped == 0);
  int64_t last = 0;
  for (const frugal::ChatExample& e : r.examples) {
    require(e.line > last);
    last = e.line;
    require((r.format == frugal::ChatFormat::Text) == e.messages.empty());
    bool assistant = false;
    for (const frugal::ChatMessage& m : e.messages) {
      require(m.role == "system" || m.role == "user" || m.role == "assistant");
      assistant = assistant || m.role == "assistant";
    }
    require(assistant || !options.require_assistant || r.format == frugal::ChatFormat::Text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view jsonl(reinterpret_cast<const char*>(data), size);
  using F = frugal::ChatFormat;
  for (F format : {F::Auto, F::Chat, F::ShareGpt, F::PromptCompletion, F::Alpaca, F::Text})
    for (int mode = 0; mode < 3; ++mode) {  // strict; skip bad lines; skip them and require an assistant turn
      frugal::ChatReadOptions options;
      options.format = format;
      options.skip_bad = mode > 0;
      options.require_assistant = mode == 2;
      try {
        check_records(frugal::parse_chat_records(jsonl, "fuzz.jsonl", options), options);
      } catch (const frugal::Error& e) {
        require(std::string_view(e.what()).find('\n') == std::string_view::npos);
      }
    }
  return 0;
}
