#pragma once
// Helpers for reading tokenizer.json: the one wording for a tokenizer frugal cannot read (so every
// refusal names what is supported), and short descriptions of JSON values for error messages.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.h"

namespace frugal {

inline Error unsupported_tokenizer(const std::string& source, const std::string& what) {
  return Error(source + ": " + what + " is not supported; frugal reads byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM)");
}

// `text` quoted, cut at 40 bytes.
inline std::string shown(std::string_view text) {
  const std::string s(text.substr(0, 40));
  return "'" + s + (text.size() > 40 ? "...'" : "'");
}

// A component's "type" ("ByteLevel", "NFC", ...), "null", or the value itself, shortened.
inline std::string type_of(const nlohmann::json& j) {
  if (j.is_null()) return "null";
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : shown(j.dump());
}

// tokenizer_config.json's bos_token/eos_token: a string, an object with "content", or null ("").
// (A template: the tokenizer reads the config as json, the chat template's globals as ordered_json.)
template <typename Json>
std::string special_token_text(const Json& config, const char* key) {
  if (!config.contains(key)) return {};
  const Json& v = config[key];
  if (v.is_string()) return v.template get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].template get<std::string>();
  return {};
}

}  // namespace frugal
