#include "run/chat_prompt.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "run/model_builder.h"

namespace frugal {

ChatRendering generation_rendering(const RunSpec& f, const TextTokenizer* tokenizer, const std::string& command) {
  check(tokenizer != nullptr, command + ": a chat needs the model's tokenizer (tokenizer.json in " + f.model.model_dir +
                                  ", or --tokenizer)");
  // --tokenizer may name the tokenizer.json itself: its tokenizer_config.json lies beside it.
  std::string dir = tokenizer_dir(f.model);
  if (std::filesystem::is_regular_file(dir)) dir = std::filesystem::path(dir).parent_path().string();
  ChatRendering rendering = load_chat_rendering(dir, f.chat.chat_template, f.chat.template_kwargs, *tokenizer);
  check(rendering.chat_template.has_value(), command + ": the model has no chat template (" + dir +
                                                 "/tokenizer_config.json has no chat_template): pass --chat-template FILE");
  return rendering;
}

std::vector<int32_t> chat_prompt_ids(const ChatRendering& rendering, const std::vector<ChatMessage>& messages,
                                     TextTokenizer& tokenizer) {
  std::vector<int32_t> ids;
  tokenizer.encode_append(render_chat(rendering, messages, /*add_generation_prompt=*/true), ids);
  return ids;
}

std::vector<int32_t> end_of_turn_ids(const ChatRendering& rendering, TextTokenizer& tokenizer,
                                     const std::string& model_dir) {
  std::vector<int32_t> stop;
  const auto add = [&](int64_t id) {
    if (id >= 0 && id < tokenizer.vocab_size() && std::find(stop.begin(), stop.end(), id) == stop.end())
      stop.push_back(static_cast<int32_t>(id));
  };
  std::vector<std::string> texts = rendering.end_of_turn;
  texts.push_back("<|end_of_text|>");  // a base Llama 3's EOS, which its instruct model's generation also ends at
  for (const std::string& text : texts) {
    std::vector<int32_t> ids;
    tokenizer.encode_append(text, ids);
    if (ids.size() == 1) add(ids[0]);
  }
  add(tokenizer.document_separator());
  for (const char* file : {"config.json", "generation_config.json"}) {
    const std::filesystem::path path = std::filesystem::path(model_dir) / file;
    if (model_dir.empty() || !std::filesystem::is_regular_file(path)) continue;
    const nlohmann::json config = read_json_file(path.string());
    const nlohmann::json eos = config.is_object() ? config.value("eos_token_id", nlohmann::json()) : nlohmann::json();
    for (const nlohmann::json& id : eos.is_array() ? eos : nlohmann::json::array({eos}))
      if (id.is_number_integer()) add(id.get<int64_t>());
  }
  return stop;
}

}  // namespace frugal
