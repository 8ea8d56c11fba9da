#pragma once
// One line of a chat JSONL file (src/text/chat_records.h): which format its keys say, and the
// example it makes. Refusals throw Error(why) without the file and line, which the caller adds.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "text/chat_records.h"

namespace frugal {

// The format whose key the record has, in the order messages, conversations, prompt, instruction,
// text (an Alpaca record often carries a "text" too); Auto when it has none of them.
ChatFormat record_format(const nlohmann::json& record);

// Whether the record has the key that marks `format`.
bool has_format_key(const nlohmann::json& record, ChatFormat format);

// The record (a JSON object) as an example of `format` (not Auto); its strings are moved out.
ChatExample record_example(nlohmann::json& record, ChatFormat format, bool require_assistant);

// `text` as a JSON string for messages: quoted, escaped, cut at 40 bytes.
std::string quoted_text(std::string_view text);

// "a string", "a number", "a list", "an object", "a boolean", "null".
std::string json_kind(const nlohmann::json& value);

}  // namespace frugal
