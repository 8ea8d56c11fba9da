// Text from a spec's language model: `frugal generate`, frugal::generate() and Python's
// frugal.generate(). BPE tokens when the model has a tokenizer, else bytes; a KV cache unless
// --no-kv-cache. With --messages the prompt is a conversation in the model's chat template, and the
// text is the reply alone.
#include "run/generate_run.h"

#include <chrono>
#include <cstdio>
#include <vector>

#include "core/error.h"
#include "run/chat_prompt.h"
#include "run/generation_model.h"
#include "text/chat_messages.h"
#include "text/tokenizer.h"

namespace frugal {

namespace {

// What generation starts from: the ids, the text printed before the new tokens, and where it stops.
struct Prompt {
  std::vector<int32_t> ids;
  std::string echo;  // --prompt's text; nothing for --messages (the reply alone is printed)
  std::vector<int32_t> stop_tokens;
};

// The prompt's ids (TextTokenizer::prompt_ids), or bytes.
Prompt text_prompt(const std::string& prompt, TextTokenizer* tokenizer) {
  if (!tokenizer) return {byte_tokens(prompt), prompt, {}};
  std::vector<int32_t> ids = tokenizer->prompt_ids(prompt);
  check(!ids.empty(), "an empty --prompt needs a <|endoftext|> (EOS) token to start from");
  return {std::move(ids), prompt, {}};
}

// --messages FILE.json in the chat template, ending at an end-of-turn token.
Prompt messages_prompt(const RunSpec& f, TextTokenizer* tokenizer) {
  const std::vector<ChatMessage> messages = read_chat_messages(f.generate.messages);
  const ChatRendering rendering = generation_rendering(f, tokenizer, "generate --messages");
  return {chat_prompt_ids(rendering, messages, *tokenizer), "", end_of_turn_ids(rendering, *tokenizer, f.model.model_dir)};
}

}  // namespace

std::string generate_run(RunSpec& f, const TextCallback& on_text) {
  resolve_spec(f, Command::Generate);
  apply_threads(f.threads);
  GenerationModel g = load_generation_model(f, "generate");
  const Prompt prompt =
      f.generate.messages.empty() ? text_prompt(f.generate.prompt, g.tokenizer) : messages_prompt(f, g.tokenizer);
  SampleOptions sample = f.generate.sample;
  sample.stop_tokens = prompt.stop_tokens;
  std::string out = prompt.echo;
  if (on_text) on_text(prompt.echo);
  // With --timing a line on stderr: the first token's latency (it includes the prompt's forward) and
  // the whole run's new tokens per second.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  double first_s = 0;
  const std::vector<int32_t> ids = generate_tokens(*g.lm, prompt.ids, sample, [&](int32_t id) {
    if (first_s == 0) first_s = std::chrono::duration<double>(Clock::now() - start).count();
    const std::string text = g.tokenizer ? g.tokenizer->token_bytes(id) : std::string(1, static_cast<char>(id & 0xff));
    out += text;
    if (on_text) on_text(text);
  });
  const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
  if (f.generate.timing)
    std::fprintf(stderr,
                 "generate: %zu prompt tokens, %zu new tokens in %.3f s (%.2f tokens/s), first after %.3f s, "
                 "kv cache %s\n",
                 prompt.ids.size(), ids.size(), total_s, total_s > 0 ? ids.size() / total_s : 0.0, first_s,
                 sample.kv_cache ? "on" : "off");
  return out;
}

}  // namespace frugal
