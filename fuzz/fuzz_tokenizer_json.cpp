// libFuzzer target: arbitrary bytes as a Hugging Face tokenizer.json. Loading must end in a
// tokenizer or a frugal::Error, never a crash, a sanitizer report or a hang. A tokenizer that loads
// then encodes fixed texts (ASCII, multi-byte and invalid UTF-8, its own added tokens) and decodes
// the ids, so the Split regexes, added-token matching, NFC and the merges all run on fuzzed rules.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/hf_tokenizer.h"

namespace {

using namespace std::string_literals;

const std::vector<std::string> kTexts = {
    "Hello, world! It's 2026: 12345 tokens.\n\n  \tx  ",
    "caf\xC3\xA9 cafe\xCC\x81 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x99\x82 \xE2\x85\xA2 \xD9\xA3",  // NFC pair, CJK, emoji, numerals
    "\xFF\xFE\xC3(\xE2\x82 \xF0\x9F\x99 \xED\xA0\x80\x00" "end"s,                              // invalid UTF-8, NUL
    "",
};

struct Added {
  std::string content;
  int32_t id;
  bool strips;
};

// The added tokens as the file lists them (the tokenizer does not expose them): their texts go into
// the inputs, and they decide whether decode(encode(x)) == x must hold.
std::vector<Added> added_tokens(const nlohmann::json& j) {
  std::vector<Added> out;
  if (!j.contains("added_tokens") || !j["added_tokens"].is_array()) return out;
  for (const auto& t : j["added_tokens"]) {
    if (!t.is_object() || !t.contains("content") || !t["content"].is_string() || !t.contains("id") ||
        !t["id"].is_number_integer())
      continue;
    const auto flag = [&](const char* k) { return t.contains(k) && t[k].is_boolean() && t[k].get<bool>(); };
    out.push_back({t["content"].get<std::string>(), t["id"].get<int32_t>(), flag("lstrip") || flag("rstrip")});
  }
  return out;
}

// ByteLevel's add_prefix_space puts a space before pieces: decoding then gives other bytes.
bool adds_prefix_space(const nlohmann::json& j) {
  if (j.is_object() && j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean() &&
      j["add_prefix_space"].get<bool>())
    return true;
  if (j.is_structured())
    for (const auto& child : j) if (adds_prefix_space(child)) return true;
  return false;
}

void encode_all(frugal::HfTokenizer& t, const std::vector<std::string>& texts, bool round_trip) {
  for (const std::string& text : texts) {
    const std::vector<int32_t> ids = t.encode(text);
    const std::string back = t.decode(ids);  // every id encode makes has bytes
    if (round_trip && back != text) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    frugal::HfTokenizer t = frugal::HfTokenizer::from_json(bytes, "fuzz tokenizer.json");
    const nlohmann::json j = nlohmann::json::parse(bytes);  // it loaded: valid JSON
    const std::vector<Added> added = added_tokens(j);
    std::vector<std::string> texts = kTexts;
    // The documented round trip holds without NFC, without a prefix space, and without added tokens
    // that swallow whitespace or decode to other bytes than their text (an added token given a
    // byte-alphabet vocabulary entry).
    bool round_trip = !t.normalizes_nfc() && !(j.contains("pre_tokenizer") && adds_prefix_space(j["pre_tokenizer"]));
    for (size_t k = 0; k < added.size() && k < 8; ++k) {
      const Added& a = added[k];
      texts.push_back("a" + a.content + a.content + " " + a.content + "\xC3\xA9" + a.content.substr(0, a.content.size() / 2));
      round_trip = round_trip && !a.strips && t.decode(std::vector<int32_t>{a.id}) == a.content;
    }
    encode_all(t, texts, round_trip);
    // Loading promises that the template's tokens exist (generate puts them before a prompt).
    for (const auto* ids : {&t.template_prefix(), &t.template_suffix()})
      for (int32_t id : *ids) try {
          t.token_bytes(id);
        } catch (const frugal::Error&) {
          std::abort();
        }
    t.prompt_ids(texts[0]);
    t.set_split_special_tokens(true);
    encode_all(t, texts, round_trip);
  } catch (const frugal::Error&) {
  }
  return 0;
}
