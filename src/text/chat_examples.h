#pragma once
// Chat and instruction examples (text/chat_records.h) turned into what the trainer needs: the text
// the model's chat template renders, its token ids, and which tokens the loss trains on.
//
// The trained tokens of an assistant turn are those rendered from the end of the turn's generation
// prompt (what add_generation_prompt appends: "<|im_start|>assistant\n") through the first
// end-of-turn token the template writes after the message's content ("<|im_end|>", "<|eot_id|>").
// Both ends come from the interpreter's per-byte record of which turn wrote a byte and which
// message's content it is a byte of (jinja/chat_template.h): text a user wrote can never move them.
// A token is trained when any of its bytes is.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "jinja/chat_template.h"
#include "text/chat_records.h"
#include "text/tokenizer.h"

namespace frugal {

// --train-on: every assistant turn, the last assistant turn only, or every token.
enum class TrainOn { Default, Assistant, Completion, All };
TrainOn parse_train_on(const std::string& name);  // "assistant", "completion", "all"; "" is Default
const char* train_on_name(TrainOn on);
// Default's meaning for a format: assistant for chat and ShareGPT, completion for prompt-completion
// and Alpaca (their one assistant turn), all for text.
TrainOn resolve_train_on(TrainOn on, ChatFormat format);

// How examples become text: a chat template (the model's or --chat-template's) with the globals
// Hugging Face gives it, or none (a model without one: prompt and completion concatenated).
struct ChatRendering {
  std::optional<jinja::Template> chat_template;
  std::string bos_token, eos_token;  // tokenizer_config.json's ("" when it names none)
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();  // --chat-template-kwargs
  std::vector<std::string> end_of_turn;  // the texts of the tokens that end an assistant turn
};

// The rendering of the model whose tokenizer files are in `tokenizer_dir` (its tokenizer_config.json:
// chat_template, a string or a list of named ones of which "default" is taken; bos_token, eos_token),
// with `template_file` (--chat-template, "" none) replacing the template and `kwargs_json`
// (--chat-template-kwargs, a JSON object, "" none) adding variables. Errors name the file.
ChatRendering load_chat_rendering(const std::string& tokenizer_dir, const std::string& template_file,
                                  const std::string& kwargs_json, const TextTokenizer& tokenizer);

struct TokenizedExample {
  int64_t line = 0;           // of the JSONL file
  std::string text;           // what was tokenized (the rendered template)
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;  // mask[i] = 1: token i is a target the loss trains on (never token 0)
  int64_t trained() const;    // tokens with mask 1
};

// Renders, tokenizes and masks one example (`on` resolved). Error "SOURCE:LINE: why" when it cannot
// be: a chat without a template, a template that adds no generation prompt or writes no end-of-turn
// token after an assistant turn, a template error.
TokenizedExample tokenize_example(const ChatExample& example, ChatFormat format, TrainOn on,
                                  const ChatRendering& rendering, TextTokenizer& tokenizer, const std::string& source);

// The globals Hugging Face's apply_chat_template renders with: messages, add_generation_prompt, the
// tokenizer's bos_token and eos_token (when it names them) and the extra variables.
nlohmann::ordered_json chat_context(const ChatRendering& rendering, const std::vector<ChatMessage>& messages,
                                    bool add_generation_prompt);

// The template's text for `messages` and add_generation_prompt (generation and `frugal chat`).
std::string render_chat(const ChatRendering& rendering, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt);

}  // namespace frugal
