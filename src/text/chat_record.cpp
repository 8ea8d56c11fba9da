#include "text/chat_record.h"

#include <algorithm>
#include <array>
#include <utility>

#include "core/error.h"

namespace frugal {

using nlohmann::json;

namespace {

// Each format's marking key, in detection order.
constexpr std::array<std::pair<ChatFormat, const char*>, 5> kFormatKeys{{
    {ChatFormat::Chat, "messages"},
    {ChatFormat::ShareGpt, "conversations"},
    {ChatFormat::PromptCompletion, "prompt"},
    {ChatFormat::Alpaca, "instruction"},
    {ChatFormat::Text, "text"},
}};

const char* format_key(ChatFormat format) {
  for (const auto& [f, key] : kFormatKeys)
    if (f == format) return key;
  throw Error("chat records: no key for format " + std::string(chat_format_name(format)));
}

// "messages[2].content" for a field of a list element, "\"prompt\"" for a top-level key.
std::string field_name(const std::string& where, const char* key) {
  return where.empty() ? "\"" + std::string(key) + "\"" : where + "." + key;
}

// object[key] as a string (moved out). Missing or not a string: Error naming the field.
std::string take_string(json& object, const char* key, const std::string& where = "") {
  const auto it = object.find(key);
  if (it == object.end())
    throw Error(where.empty() ? "missing key \"" + std::string(key) + "\"" : where + " has no \"" + key + "\"");
  check(it->is_string(), field_name(where, key) + " is " + json_kind(*it) + ", expected a string");
  return std::move(it->get_ref<std::string&>());
}

// An optional string: absent or null is "".
std::string take_optional_string(json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? std::string() : take_string(object, key);
}

// The role a chat message's "role" or a ShareGPT turn's "from" names. Refused: anything but the
// known speakers ("tool" with its own wording: tool calls are not read yet).
std::string role_of(const std::string& speaker, const std::string& field, bool sharegpt) {
  if (speaker == "system" || speaker == "user" || speaker == "assistant") return speaker;
  if (sharegpt && speaker == "human") return "user";
  if (sharegpt && speaker == "gpt") return "assistant";
  const std::string expected = sharegpt ? "human, gpt, system, user or assistant" : "system, user or assistant";
  if (speaker == "tool") throw Error(field + " \"tool\" is not supported yet (expected " + expected + ")");
  throw Error(field + " " + quoted_text(speaker) + " is not a known role (expected " + expected + ")");
}

// The "messages" (chat) or "conversations" (ShareGPT) list.
std::vector<ChatMessage> take_turns(json& record, ChatFormat format) {
  const bool sharegpt = format == ChatFormat::ShareGpt;
  const char* list_key = format_key(format);
  const char* role_key = sharegpt ? "from" : "role";
  const char* content_key = sharegpt ? "value" : "content";
  const auto found = record.find(list_key);
  if (found == record.end()) throw Error("missing key \"" + std::string(list_key) + "\"");
  json& list = *found;
  check(list.is_array(), "\"" + std::string(list_key) + "\" is " + json_kind(list) + ", expected a list of messages");
  check(!list.empty(), "empty \"" + std::string(list_key) + "\" list");
  std::vector<ChatMessage> messages;
  messages.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = std::string(list_key) + "[" + std::to_string(i) + "]";
    json& turn = list[i];
    check(turn.is_object(), where + " is " + json_kind(turn) + ", expected an object with \"" + role_key + "\" and \"" +
                                content_key + "\"");
    const std::string speaker = take_string(turn, role_key, where);
    std::string role = role_of(speaker, where + "." + role_key, sharegpt);
    messages.push_back({std::move(role), take_string(turn, content_key, where)});
  }
  return messages;
}

// Alpaca: [system], user: instruction (+ "\n\n" + input), assistant: output.
std::vector<ChatMessage> alpaca_messages(json& record) {
  std::string instruction = take_string(record, "instruction");
  const std::string input = take_optional_string(record, "input");
  std::string output = take_string(record, "output");
  std::string system = take_optional_string(record, "system");
  std::vector<ChatMessage> messages;
  if (!system.empty()) messages.push_back({"system", std::move(system)});
  messages.push_back({"user", input.empty() ? std::move(instruction) : instruction + "\n\n" + input});
  messages.push_back({"assistant", std::move(output)});
  return messages;
}

}  // namespace

ChatFormat record_format(const json& record) {
  for (const auto& [format, key] : kFormatKeys)
    if (record.contains(key)) return format;
  return ChatFormat::Auto;
}

bool has_format_key(const json& record, ChatFormat format) { return record.contains(format_key(format)); }

ChatExample record_example(json& record, ChatFormat format, bool require_assistant) {
  ChatExample example;
  switch (format) {
    case ChatFormat::Chat:
    case ChatFormat::ShareGpt: example.messages = take_turns(record, format); break;
    case ChatFormat::PromptCompletion: {
      std::string prompt = take_string(record, "prompt");
      example.messages = {{"user", std::move(prompt)}, {"assistant", take_string(record, "completion")}};
      break;
    }
    case ChatFormat::Alpaca: example.messages = alpaca_messages(record); break;
    case ChatFormat::Text: example.text = take_string(record, "text"); return example;
    case ChatFormat::Auto: throw Error("chat records: a record of no format");
  }
  const bool has_assistant = std::any_of(example.messages.begin(), example.messages.end(),
                                         [](const ChatMessage& m) { return m.role == "assistant"; });
  check(has_assistant || !require_assistant, "no assistant message");
  return example;
}

std::string quoted_text(std::string_view text) {
  const bool cut = text.size() > 40;
  // replace: a cut through a multi-byte character shows as U+FFFD instead of failing
  const std::string s = json(std::string(text.substr(0, 40))).dump(-1, ' ', false, json::error_handler_t::replace);
  return cut ? s.substr(0, s.size() - 1) + "...\"" : s;
}

std::string json_kind(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "an object";
    case json::value_t::binary: return "binary data";
    default: return "a number";
  }
}

}  // namespace frugal
