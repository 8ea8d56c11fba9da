#pragma once
// One conversation in a JSON file (`frugal generate --messages FILE.json`): a list of
// {"role": "system|user|assistant", "content": "..."} messages, or an object {"messages": [...]}
// (a line of chat JSONL data, text/chat_records.h, is one too). The messages are checked as chat
// data's are: known roles, string contents, a non-empty list.
#include <string>
#include <string_view>
#include <vector>

#include "text/chat_records.h"

namespace frugal {

// The file's messages; a one-line Error "PATH: why" otherwise (unreadable, invalid JSON, another
// shape, a bad message).
std::vector<ChatMessage> read_chat_messages(const std::string& path);

// The same on text in memory; `source` names it in errors.
std::vector<ChatMessage> parse_chat_messages(std::string_view json_text, const std::string& source);

}  // namespace frugal
