// A conversation with a language model. Each turn re-renders and re-runs the whole history (the KV
// cache serves one reply, not the next turn): correct first, and simple. Keeping the cache across
// turns would need the rendered prefix to stay byte-identical, which templates do not promise (Qwen3
// drops earlier turns' reasoning).
#include "run/chat_run.h"

#include "run/chat_prompt.h"
#include "run/generation_model.h"
#include "text/tokenizer.h"

namespace frugal {

struct ChatSession::Loaded {
  GenerationModel model;
  ChatRendering rendering;
  std::vector<int32_t> stop_tokens;
};

ChatSession::ChatSession(RunSpec spec) : spec_(std::move(spec)) {
  resolve_spec(spec_, Command::Chat);
  apply_threads(spec_.threads);
  loaded_ = std::make_unique<Loaded>();
  loaded_->model = load_generation_model(spec_, "chat");
  loaded_->rendering = generation_rendering(spec_, loaded_->model.tokenizer, "chat");
  loaded_->stop_tokens = end_of_turn_ids(loaded_->rendering, *loaded_->model.tokenizer, spec_.model.model_dir);
  reset();
}

ChatSession::~ChatSession() = default;

void ChatSession::reset() {
  history_.clear();
  replies_ = 0;  // a new conversation draws as a fresh session does
  if (!spec_.generate.system.empty()) history_.push_back({"system", spec_.generate.system});
}

std::string ChatSession::reply(const std::string& user_text, const TextCallback& on_text) {
  TextTokenizer& tokenizer = *loaded_->model.tokenizer;
  history_.push_back({"user", user_text});
  std::string reply;
  try {
    const std::vector<int32_t> prompt = chat_prompt_ids(loaded_->rendering, history_, tokenizer);
    SampleOptions sample = spec_.generate.sample;
    sample.stop_tokens = loaded_->stop_tokens;
    sample.seed = spec_.generate.sample.seed + replies_;  // not the same draws every turn
    generate_tokens(*loaded_->model.lm, prompt, sample, [&](int32_t id) {
      const std::string& text = tokenizer.token_bytes(id);
      reply += text;
      if (on_text) on_text(text);
    });
  } catch (...) {
    history_.pop_back();
    throw;
  }
  ++replies_;
  history_.push_back({"assistant", reply});
  return reply;
}

}  // namespace frugal
