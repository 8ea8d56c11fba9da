// Reading tokenizer.json (and tokenizer_config.json beside it) into an HfTokenizer: every part is
// checked to be one frugal implements, so a tokenizer that would encode differently from Hugging
// Face's is refused at load time rather than producing other ids.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "text/byte_alphabet.h"
#include "text/hf_json.h"
#include "text/hf_tokenizer.h"

namespace frugal {

namespace {

using nlohmann::json;

const json& member(const json& j, const char* key) {
  static const json null;
  return j.is_object() && j.contains(key) ? j[key] : null;
}

// The BPE options that would make it something other than GPT-2's byte-level BPE.
void check_model_kind(const json& model, const std::string& source) {
  std::string type = member(model, "type").is_string() ? model["type"].get<std::string>() : "";
  if (type.empty() && model.contains("merges")) type = "BPE";  // old files leave it out
  if (type != "BPE") throw unsupported_tokenizer(source, "model type " + (type.empty() ? "(none)" : type));
  if (member(model, "byte_fallback").is_boolean() && model["byte_fallback"].get<bool>())
    throw unsupported_tokenizer(source, "BPE with byte_fallback (SentencePiece-style BPE, as Llama 2's)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (member(model, key).is_string() && !model[key].get<std::string>().empty())
      throw unsupported_tokenizer(source, std::string("BPE with a ") + key + " (" + shown(model[key].get<std::string>()) + ")");
  if (member(model, "dropout").is_number() && model["dropout"].get<double>() > 0)
    throw unsupported_tokenizer(source, "BPE with dropout (random encodings)");
}

// Ids index a table (text/bpe_model.h): a file of n tokens may use ids below n + 2^20, so a stray
// huge id is refused rather than allocating gigabytes (found by fuzz/fuzz_tokenizer_json.cpp).
int64_t id_limit(size_t tokens) {
  return std::min(static_cast<int64_t>(tokens) + (int64_t{1} << 20), (int64_t{1} << 31) - 1);
}

void read_vocab(const json& vocab, BpeModel& model, const std::string& source) {
  if (!vocab.is_object() || vocab.empty()) throw Error(source + ": model.vocab is not a JSON object of token -> id");
  const int64_t limit = id_limit(vocab.size());
  for (const auto& [text, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= limit)
      throw Error(source + ": token " + shown(text) + " has id " + id.dump() + ", not a number from 0 to " +
                  std::to_string(limit - 1) + " (the vocabulary's size + 2^20)");
    // A token outside the byte alphabet (a special token written as itself) decodes to its UTF-8,
    // as Hugging Face's ByteLevel decoder does, and is never made by BPE.
    std::optional<std::string> bytes = alphabet_to_bytes(text);
    const bool in_alphabet = bytes.has_value();
    if (!model.add_token(id.get<int32_t>(), in_alphabet ? std::move(*bytes) : text, in_alphabet))
      throw Error(source + ": id " + id.dump() + " is given to two tokens");
  }
  const int missing = model.missing_byte_token();
  if (missing >= 0)
    throw Error(source + ": the vocabulary lacks the single-byte token of byte " + std::to_string(missing) +
                " (not a byte-level BPE vocabulary)");
}

// Merges are "a b" strings (older files) or ["a", "b"] pairs (newer ones).
void read_merges(const json& merges, BpeModel& model, const std::string& source) {
  if (!merges.is_array()) throw Error(source + ": model.merges is not a list");
  size_t index = 0;
  for (const json& m : merges) {
    std::string_view left, right;
    std::string line;
    if (m.is_string()) {
      line = m.get<std::string>();
      const size_t space = line.find(' ');
      if (space != std::string::npos && line.find(' ', space + 1) == std::string::npos)
        left = std::string_view(line).substr(0, space), right = std::string_view(line).substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get_ref<const std::string&>(), right = m[1].get_ref<const std::string&>();
    }
    // (No check() in this loop: its message would be built for each of the 280,000 merges.)
    if (left.empty() || right.empty())
      throw Error(source + ": merge " + std::to_string(index) + " is " + shown(m.dump()) + ", not \"a b\" or [\"a\", \"b\"]");
    const std::string problem = model.add_merge(left, right);
    if (!problem.empty()) throw Error(source + ": merge " + std::to_string(index) + " (" + shown(m.dump()) + "): " + problem);
    ++index;
  }
}

// True for NFC; null (or an empty Sequence) is false; anything else is refused.
bool read_normalizer(const json& j, const std::string& source) {
  const std::string type = type_of(j);
  if (type == "null") return false;
  if (type == "NFC") return true;
  if (type == "Sequence" && member(j, "normalizers").is_array()) {
    bool nfc = false;
    for (const json& n : j["normalizers"]) nfc = read_normalizer(n, source) || nfc;
    return nfc;
  }
  throw unsupported_tokenizer(source, "normalizer " + type + " (frugal implements NFC)");
}

AddedToken read_added(const json& j, const std::string& source, int64_t limit) {
  if (!member(j, "id").is_number_integer() || !member(j, "content").is_string())
    throw Error(source + ": added_tokens entry " + shown(j.dump()) + " lacks an id or a content");
  if (j["id"].get<int64_t>() < 0 || j["id"].get<int64_t>() >= limit)
    throw Error(source + ": added token " + shown(j["content"].get<std::string>()) + " has id " + j["id"].dump() +
                ", not a number from 0 to " + std::to_string(limit - 1) + " (the number of tokens + 2^20)");
  const auto flag = [&](const char* key, bool fallback) { return member(j, key).is_boolean() ? j[key].get<bool>() : fallback; };
  AddedToken t{j["content"].get<std::string>(), j["id"].get<int32_t>()};
  t.special = flag("special", false);
  t.single_word = flag("single_word", false);
  t.lstrip = flag("lstrip", false);
  t.rstrip = flag("rstrip", false);
  t.normalized = flag("normalized", !t.special);
  return t;
}

}  // namespace

bool HfTokenizer::present(const std::string& dir) {
  return std::filesystem::is_regular_file(std::filesystem::path(dir) / kFileName);
}

HfTokenizer HfTokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path file = path;
  if (fs::is_directory(file)) {
    file /= kFileName;
    check(fs::is_regular_file(file), path + ": no " + kFileName + " (Hugging Face's tokenizer file) in this directory");
  }
  check(fs::is_regular_file(file), "tokenizer file " + path + " does not exist");
  const fs::path config = file.parent_path() / "tokenizer_config.json";
  return from_json(read_file(file.string()), file.string(), fs::is_regular_file(config) ? read_file(config.string()) : "");
}

HfTokenizer HfTokenizer::from_json(std::string_view tokenizer_json, const std::string& source, std::string_view config_json) {
  json j;
  try {
    j = json::parse(tokenizer_json);
  } catch (const json::exception& e) {
    throw Error(source + ": not valid JSON (" + e.what() + ")");
  }
  check(j.is_object() && member(j, "model").is_object(), source + ": has no \"model\" object (not a tokenizer.json)");
  HfTokenizer t;
  try {
    check_model_kind(j["model"], source);
    t.nfc_ = read_normalizer(member(j, "normalizer"), source);
    t.pre_tokenizer_ = HfPreTokenizer::from_json(member(j, "pre_tokenizer"), source);
    if (!member(j, "decoder").is_null() && type_of(j["decoder"]) != "ByteLevel")
      throw unsupported_tokenizer(source, "decoder " + type_of(j["decoder"]) + " (with byte-level BPE)");
    t.read_model(j["model"], source);
    t.read_added_tokens(member(j, "added_tokens"), source);
    t.read_post_processor(member(j, "post_processor"), source);
    t.read_special_names(config_json, source);
  } catch (const json::exception& e) {  // a value of the wrong type somewhere
    throw Error(source + ": unexpected contents (" + e.what() + ")");
  }
  t.build_matchers();
  return t;
}

void HfTokenizer::read_model(const json& model, const std::string& source) {
  read_vocab(member(model, "vocab"), model_, source);
  read_merges(member(model, "merges"), model_, source);
  model_.set_ignore_merges(member(model, "ignore_merges").is_boolean() && model["ignore_merges"].get<bool>());
}

void HfTokenizer::read_added_tokens(const json& list, const std::string& source) {
  if (list.is_null()) return;
  if (!list.is_array()) throw Error(source + ": added_tokens is not a list");
  const int64_t limit = id_limit(static_cast<size_t>(model_.token_count()) + list.size());
  for (const json& entry : list) {
    AddedToken t = read_added(entry, source, limit);
    const std::string* existing = model_.token(t.id);
    if (existing && *existing != t.content && alphabet_to_bytes(t.content) != *existing)
      throw Error(source + ": added token " + shown(t.content) + " has id " + std::to_string(t.id) + ", which is " +
                  shown(bytes_to_alphabet(*existing)) + " in the vocabulary");
    if (!existing) model_.add_token(t.id, t.content, false);  // decodes to its content; BPE never makes it
    added_.push_back(std::move(t));
  }
}

}  // namespace frugal
