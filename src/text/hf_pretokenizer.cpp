#include "text/hf_pretokenizer.h"

#include <unicode/uchar.h>

#include <nlohmann/json.hpp>

#include "text/hf_json.h"
#include "text/utf8.h"

namespace frugal {

namespace {

// GPT-2's expression, which ByteLevel applies when use_regex is set (Hugging Face's byte_level.rs).
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

bool flag(const nlohmann::json& j, const char* key, bool fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) throw Error(source + ": pre_tokenizer " + type_of(j) + "'s " + key + " is not true or false");
  return j[key].get<bool>();
}

}  // namespace

size_t HfPreTokenizer::numeric_at(std::string_view text, size_t i) {
  const auto b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) return b >= '0' && b <= '9' ? 1 : 0;
  const DecodedChar c = decode_utf8(text, i);
  if (!c.valid) return 0;
  const int8_t type = u_charType(static_cast<UChar32>(c.codepoint));
  const bool numeric = type == U_DECIMAL_DIGIT_NUMBER || type == U_LETTER_NUMBER || type == U_OTHER_NUMBER;
  return numeric ? c.length : 0;
}

HfPreTokenizer HfPreTokenizer::from_json(const nlohmann::json& j, const std::string& source) {
  HfPreTokenizer p;
  bool byte_level = false;
  if (!j.is_null()) p.add(j, source, byte_level);
  if (!byte_level)
    throw unsupported_tokenizer(source, "a BPE model without a ByteLevel pre-tokenizer (pre_tokenizer: " + type_of(j) + ")");
  return p;
}

void HfPreTokenizer::add(const nlohmann::json& j, const std::string& source, bool& byte_level) {
  const std::string type = type_of(j);
  // The vocabulary is raw bytes, so ByteLevel's mapping happens implicitly at the end: a step after
  // it would see the original text where Hugging Face's sees the byte alphabet.
  if (byte_level) throw unsupported_tokenizer(source, "a pre-tokenizer after ByteLevel (" + type + ")");
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      throw Error(source + ": the Sequence pre_tokenizer has no \"pretokenizers\" list");
    for (const nlohmann::json& child : j["pretokenizers"]) add(child, source, byte_level);
  } else if (type == "ByteLevel") {
    byte_level = true;
    if (flag(j, "add_prefix_space", false, source)) steps_.push_back({Step::Kind::PrefixSpace});
    if (flag(j, "use_regex", true, source)) {
      steps_.push_back({Step::Kind::Regex, regexes_.size()});
      regexes_.emplace_back(kGpt2Pattern, source);
    }
  } else if (type == "Split") {
    const nlohmann::json pattern = j.value("pattern", nlohmann::json());
    const bool regex = pattern.contains("Regex") && pattern["Regex"].is_string();
    if (!regex && !(pattern.contains("String") && pattern["String"].is_string()))
      throw Error(source + ": the Split pre_tokenizer's pattern is neither {\"Regex\": ...} nor {\"String\": ...}");
    const std::string behavior = j.value("behavior", std::string("?"));
    if (behavior != "Isolated" || flag(j, "invert", false, source))
      throw unsupported_tokenizer(source, "a Split pre-tokenizer with behavior " + behavior + (flag(j, "invert", false, source) ? " inverted" : ""));
    steps_.push_back({Step::Kind::Regex, regexes_.size()});
    regexes_.emplace_back(pattern[regex ? "Regex" : "String"].get<std::string>(), source, !regex);
  } else if (type == "Digits") {
    steps_.push_back({Step::Kind::Digits, 0, flag(j, "individual_digits", false, source)});
  } else {
    throw unsupported_tokenizer(source, "pre_tokenizer type " + type);
  }
}

}  // namespace frugal
