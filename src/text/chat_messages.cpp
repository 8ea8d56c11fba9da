#include "text/chat_messages.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "text/chat_record.h"

namespace frugal {

namespace {
// nlohmann's parse errors fit on one line, but may quote control bytes of the input.
std::string printable(std::string text) {
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return text.size() <= 200 ? text : text.substr(0, 200) + "...";
}
}  // namespace

std::vector<ChatMessage> parse_chat_messages(std::string_view json_text, const std::string& source) {
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": invalid JSON (" + printable(e.what()) + ")");
  }
  if (document.is_array()) document = nlohmann::json{{"messages", std::move(document)}};
  check(document.is_object() && document.contains("messages"),
        source + ": expected a list of {\"role\", \"content\"} messages or {\"messages\": [...]}, got " +
            json_kind(document));
  try {
    return record_example(document, ChatFormat::Chat, /*require_assistant=*/false).messages;
  } catch (const nlohmann::json::exception& e) {  // a case the checks missed: still one line, still this file's
    throw Error(source + ": " + printable(e.what()));
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
}

std::vector<ChatMessage> read_chat_messages(const std::string& path) { return parse_chat_messages(read_file(path), path); }

}  // namespace frugal
