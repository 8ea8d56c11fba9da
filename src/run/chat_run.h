#pragma once
// A conversation with a language model (`frugal chat`; tests and the Python module can hold one
// too): each user message is appended to the history, the whole history is rendered with the
// model's chat template (or --chat-template) and the reply is generated with the KV cache until an
// end-of-turn or EOS token, or --tokens.
#include <memory>
#include <string>
#include <vector>

#include "run/generate_run.h"
#include "run/run_spec.h"
#include "text/chat_records.h"

namespace frugal {

class ChatSession {
 public:
  // Resolves `spec` as `frugal chat` (--model, --adapter, --base-precision, --tokenizer, --system,
  // --chat-template, --chat-template-kwargs and the sampling flags) and loads the model. One-line
  // Error when the model has no chat template and no --chat-template is given.
  explicit ChatSession(RunSpec spec);
  ~ChatSession();

  // Appends the user's message, generates the reply (on_text hears each token's text as it comes),
  // appends it and returns it. The history is unchanged when this throws.
  std::string reply(const std::string& user_text, const TextCallback& on_text = {});

  // A new conversation, sampled as a fresh session's: the history holds the --system message only.
  void reset();

  const std::vector<ChatMessage>& history() const { return history_; }

 private:
  struct Loaded;  // the model, tokenizer, template and stop tokens
  RunSpec spec_;
  std::unique_ptr<Loaded> loaded_;
  std::vector<ChatMessage> history_;
  uint64_t replies_ = 0;  // replies in this conversation: reply n samples with seed + n
};

}  // namespace frugal
