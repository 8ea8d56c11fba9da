#pragma once
// Instruction / chat fine-tuning data from JSONL files: one example per line, in one of five formats
// (docs/CHAT-DATA.md). The format is detected per file from the keys of its first record, or forced:
//   chat               {"messages": [{"role": "system|user|assistant", "content": "..."}, ...]}
//   sharegpt           {"conversations": [{"from": "human|gpt|system|user|assistant", "value": "..."}]}
//   prompt-completion  {"prompt": "...", "completion": "..."}
//   alpaca             {"instruction": "...", "input": "...", "output": "...", "system": "..."}
//   text               {"text": "..."}
// Every format but text becomes a list of messages, so the trainer sees one shape:
//   sharegpt           from human -> user, gpt -> assistant, system -> system (user, assistant as is)
//   prompt-completion  [user: prompt, assistant: completion]
//   alpaca             [system: system (when present and non-empty)],
//                      user: instruction + "\n\n" + input (just instruction when input is empty or
//                      absent), assistant: output
// The trainer renders messages with the model's chat template and trains on the assistant turns; a
// model without a template concatenates prompt and completion. Keys a format does not use are ignored;
// roles other than system, user and assistant ("tool" included, for now) are refused.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace frugal {

enum class ChatFormat { Auto, Chat, ShareGpt, PromptCompletion, Alpaca, Text };

// "chat", "sharegpt", "prompt-completion", "alpaca", "text" (and "auto").
const char* chat_format_name(ChatFormat format);
// Those names and "auto"; Error listing them otherwise.
ChatFormat parse_chat_format(const std::string& name);

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct ChatExample {
  int64_t line = 0;                   // 1-based line of the file
  std::vector<ChatMessage> messages;  // empty for the text format
  std::string text;                   // the text format only
};

struct ChatRecords {
  std::string path;
  ChatFormat format = ChatFormat::Auto;  // detected or forced
  std::vector<ChatExample> examples;
  int64_t bad_skipped = 0;               // lines refused and skipped (skip_bad)
  std::vector<std::string> bad_reasons;  // the first 10 of them, each "FILE:LINE: why"
};

struct ChatReadOptions {
  ChatFormat format = ChatFormat::Auto;  // Auto: from the keys of the first record
  bool skip_bad = false;                 // count and skip refused lines instead of failing
  bool require_assistant = false;        // refuse examples without an assistant message (not text)
};

// Reads the whole file, line by line (lines may be megabytes, files gigabytes: one line's JSON is
// held at a time). A malformed line is an Error "FILE:LINE: <why>" on one line, or with skip_bad
// counted and skipped. Why: invalid JSON (with the parser's position), not an object, a missing key,
// a record of another format than the file's, a missing or unknown role, content that is not a
// string (naming its JSON type), an empty message list, and with require_assistant no assistant
// message. Blank lines are skipped, a UTF-8 BOM on line 1 is ignored, invalid UTF-8 in a string is an
// error of its line. A file without examples is an Error naming it.
ChatRecords read_chat_records(const std::string& path, const ChatReadOptions& options = {});

// The same on text in memory; `source` names it in errors (tests, the fuzzer).
ChatRecords parse_chat_records(std::string_view jsonl, const std::string& source, const ChatReadOptions& options = {});

}  // namespace frugal
