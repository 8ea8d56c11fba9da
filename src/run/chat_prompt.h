#pragma once
// A conversation as a generation's prompt (`frugal generate --messages`, `frugal chat`): the chat
// template rendered with add_generation_prompt, tokenized as written (the template writes BOS when
// the model wants one), and the tokens that end the reply.
#include <cstdint>
#include <string>
#include <vector>

#include "run/run_spec.h"
#include "text/chat_examples.h"
#include "text/chat_records.h"
#include "text/tokenizer.h"

namespace frugal {

// The template of the spec's tokenizer directory (its tokenizer_config.json), or --chat-template's,
// with --chat-template-kwargs. One-line Error naming --chat-template when there is none, and when
// there is no tokenizer (`command` names the command).
ChatRendering generation_rendering(const RunSpec& spec, const TextTokenizer* tokenizer, const std::string& command);

// The ids of render_chat(messages, add_generation_prompt = true), without a BOS of the tokenizer's
// own (TextTokenizer::prompt_ids would add a second one).
std::vector<int32_t> chat_prompt_ids(const ChatRendering& rendering, const std::vector<ChatMessage>& messages,
                                     TextTokenizer& tokenizer);

// Where a reply ends: the ids of the end-of-turn and EOS texts (ChatRendering::end_of_turn) and of
// "<|end_of_text|>" that are single tokens, the tokenizer's EOS, and every eos_token_id (a number or
// a list) of `model_dir`'s config.json and generation_config.json (Llama 3.1 Instruct's generation
// stops at 128001, 128008 and 128009).
std::vector<int32_t> end_of_turn_ids(const ChatRendering& rendering, TextTokenizer& tokenizer,
                                     const std::string& model_dir);

}  // namespace frugal
