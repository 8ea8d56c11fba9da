#include "text/gguf_vocab.h"

#include <filesystem>
#include <string_view>
#include <unordered_set>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "text/bpe_tokenizer.h"
#include "text/hf_json.h"
#include "text/hf_tokenizer.h"

namespace frugal {

namespace fs = std::filesystem;
// (Not ordered_json: its lookups are linear, and vocabularies hold 150,000 keys.)
using ordered_json = nlohmann::json;

namespace {

// llama.cpp's token types (llama_token_type).
enum TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// The pre-tokenizers llama.cpp implements for byte-level BPE that frugal's tokenizer.json reader
// implements too, as their tokenizer.json files write them. Llama 3 and Qwen2 split with these
// regular expressions (they differ in \p{N}{1,3} against \p{N}); GPT-2 splits inside ByteLevel.
constexpr const char* kLlama3Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

ordered_json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

ordered_json split_then_bytes(const char* regex) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
            byte_level(false)}}};
}

// The splitting a tokenizer.json's pre-tokenizer does, if llama.cpp has it: "gpt-2", "llama-bpe",
// "qwen2"; "" otherwise.
std::string splitting_name(const ordered_json& pre) {
  if (!pre.is_object()) return "";
  if (pre.value("type", "") == "ByteLevel")
    return pre.value("use_regex", true) && !pre.value("add_prefix_space", false) ? "gpt-2" : "";
  if (pre.value("type", "") != "Sequence" || !pre.contains("pretokenizers") || pre["pretokenizers"].size() != 2)
    return "";
  const ordered_json& split = pre["pretokenizers"][0];
  const ordered_json& bytes = pre["pretokenizers"][1];
  if (split.value("type", "") != "Split" || bytes.value("type", "") != "ByteLevel" || bytes.value("use_regex", true) ||
      bytes.value("add_prefix_space", false) || split.value("invert", false))
    return "";
  const std::string regex = split.contains("pattern") ? split["pattern"].value("Regex", "") : "";
  if (regex == kLlama3Split) return "llama-bpe";
  if (regex == kQwen2Split) return "qwen2";
  return "";
}

// llama.cpp's name for a tokenizer.json's pre-tokenizer when llama.cpp tokenizes as it does: the same
// splitting, the normaliser (NFC for Qwen's, none for the others; llama.cpp applies none), whole
// pieces looked up first exactly for Llama 3's (ignore_merges), and added tokens without lstrip,
// rstrip or single_word (llama.cpp matches them as plain text). "" otherwise.
std::string pre_name(const ordered_json& tokenizer) {
  const std::string name = splitting_name(tokenizer.value("pre_tokenizer", ordered_json()));
  const ordered_json normalizer = tokenizer.value("normalizer", ordered_json());
  const bool nfc = normalizer.is_object() && normalizer.value("type", "") == "NFC";
  if (name.empty() || (!normalizer.is_null() && !nfc) || (nfc && name != "qwen2")) return "";
  const ordered_json model = tokenizer.value("model", ordered_json::object());
  if (model.is_object() && model.value("ignore_merges", false) != (name == "llama-bpe")) return "";
  for (const ordered_json& a : tokenizer.value("added_tokens", ordered_json::array()))
    if (a.value("lstrip", false) || a.value("rstrip", false) || a.value("single_word", false)) return "";
  return name;
}

ordered_json parse_json(const std::string& text, const std::string& where) {
  try {
    ordered_json j = ordered_json::parse(text);
    check(j.is_object(), where + ": not a JSON object");
    return j;
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": not valid JSON (" + e.what() + ")");
  }
}

// GPT-2's vocab.json + merges.txt as the tokenizer.json GPT-2 ships: the same vocabulary and merges,
// ByteLevel splitting, <|endoftext|> a special added token.
std::string gpt2_pair_as_tokenizer_json(const std::string& dir) {
  const bool hf = fs::exists(fs::path(dir) / "vocab.json");
  const std::string vocab_path = (fs::path(dir) / (hf ? "vocab.json" : "encoder.json")).string();
  const std::string merges_path = (fs::path(dir) / (hf ? "merges.txt" : "vocab.bpe")).string();
  ordered_json vocab = parse_json(read_file(vocab_path), vocab_path);
  ordered_json merges = ordered_json::array();
  const std::string text = read_file(merges_path);
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && !line.starts_with("#version")) merges.push_back(line);
    begin = end + 1;
  }
  ordered_json added = ordered_json::array();
  if (vocab.contains("<|endoftext|>"))
    added.push_back({{"id", vocab["<|endoftext|>"]}, {"content", "<|endoftext|>"}, {"special", true}});
  ordered_json j = {{"added_tokens", added}, {"normalizer", nullptr}, {"pre_tokenizer", byte_level(true)},
                    {"post_processor", nullptr}, {"decoder", byte_level(true)},
                    {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  return j.dump();
}

// What tokenizer.json holds for llama.cpp's pre-tokenizer `pre`: the splitting, the normaliser, and
// whether BPE first looks a whole piece up (Llama 3's ignore_merges, as llama.cpp sets it too).
struct Splitting {
  ordered_json pre_tokenizer, normalizer;
  bool ignore_merges = false;
};

Splitting splitting_of(const std::string& pre, const std::string& where) {
  if (pre == "gpt-2") return {byte_level(true), nullptr, false};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") return {split_then_bytes(kLlama3Split), nullptr, true};
  if (pre == "qwen2") return {split_then_bytes(kQwen2Split), {{"type", "NFC"}}, false};  // Qwen's NFC first
  throw Error(where + ": tokenizer.ggml.pre '" + pre + "' is not supported (supported: gpt-2, llama-bpe, qwen2)");
}

// The post-processor that puts BOS before a text (Hugging Face's TemplateProcessing, as Llama 3's).
ordered_json bos_template(const std::string& bos, int64_t bos_id) {
  const ordered_json token = {{"SpecialToken", {{"id", bos}, {"type_id", 0}}}};
  return {{"type", "TemplateProcessing"},
          {"single", {token, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
          {"pair", {token, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}},
                    {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
          {"special_tokens", {{bos, {{"id", bos}, {"ids", {bos_id}}, {"tokens", {bos}}}}}}};
}

}  // namespace

bool gguf_has_tokenizer(const GgufFile& file) { return file.has("tokenizer.ggml.tokens"); }

TokenizerFiles read_tokenizer_files(const std::string& path) {
  if (is_gguf_file(path)) return tokenizer_files_from_gguf(GgufFile::open(path));
  fs::path dir = path;
  if (fs::is_regular_file(dir) && dir.filename() == HfTokenizer::kFileName) dir = dir.parent_path();
  TokenizerFiles files;
  if (fs::is_regular_file(dir / HfTokenizer::kFileName)) {
    files.tokenizer_json = read_file((dir / HfTokenizer::kFileName).string());
  } else {
    check(BpeTokenizer::present(dir.string()), path + ": no tokenizer files (expected tokenizer.json, vocab.json + "
                                                      "merges.txt, or encoder.json + vocab.bpe)");
    files.tokenizer_json = gpt2_pair_as_tokenizer_json(dir.string());
  }
  if (fs::is_regular_file(dir / "tokenizer_config.json")) files.config_json = read_file((dir / "tokenizer_config.json").string());
  return files;
}

namespace {

// tokenizer.json's model.vocab (normal, unknown and byte tokens) and added_tokens (control tokens
// special, user-defined ones not) from the token list and its types; unused ids are left out.
std::pair<ordered_json, ordered_json> vocabulary_of(const GgufFile& file, const std::vector<std::string>& tokens) {
  const std::string& where = file.path();
  std::vector<int64_t> types(tokens.size(), kNormal);
  if (file.has("tokenizer.ggml.token_type")) {
    types = file.get_ints("tokenizer.ggml.token_type");
    check(types.size() == tokens.size(), where + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                                             " entries for " + std::to_string(tokens.size()) + " tokens");
  }
  ordered_json vocab = ordered_json::object(), added = ordered_json::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    const int64_t type = types[id];
    if (type == kUnused) continue;
    if (type == kControl || type == kUserDefined) {
      added.push_back({{"id", id}, {"content", tokens[id]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", type == kControl}});
    } else {
      // (per token: the messages are built only on failure)
      if (type != kNormal && type != kUnknown && type != kByte)
        throw Error(where + ": token " + std::to_string(id) + " has token type " + std::to_string(type) +
                    " (frugal reads 1 to 6, 0 undefined)");
      if (!vocab.emplace(tokens[id], id).second)
        throw Error(where + ": token text of id " + std::to_string(id) + " appears twice");
    }
  }
  return {vocab, added};
}

TokenizerFiles rebuild_from_gguf(const GgufFile& file) {
  const std::string& where = file.path();
  check(gguf_has_tokenizer(file), where + ": no tokenizer (tokenizer.ggml.tokens is missing)");
  const std::string model = file.has("tokenizer.ggml.model") ? file.get_string("tokenizer.ggml.model") : "";
  check(model == "gpt2", where + ": tokenizer.ggml.model '" + model + "' is not supported (supported: gpt2, the "
                                 "byte-level BPE of GPT-2, Llama 3 and Qwen)");
  const std::string pre = file.has("tokenizer.ggml.pre") ? file.get_string("tokenizer.ggml.pre") : "";
  const Splitting splitting = splitting_of(pre, where);
  const std::vector<std::string>& tokens = file.get_strings("tokenizer.ggml.tokens");
  const auto [vocab, added] = vocabulary_of(file, tokens);
  ordered_json merges = ordered_json::array();
  check(file.has("tokenizer.ggml.merges"), where + ": tokenizer.ggml.merges is missing (byte-level BPE needs it)");
  for (const std::string& m : file.get_strings("tokenizer.ggml.merges")) merges.push_back(m);
  const auto token_text = [&](const char* key) -> ordered_json {
    if (!file.has(key)) return nullptr;
    const int64_t id = file.get_int(key);
    check(id >= 0 && id < static_cast<int64_t>(tokens.size()), where + ": " + key + " " + std::to_string(id) +
                                                                   " is not a token id");
    return tokens[static_cast<size_t>(id)];
  };
  const ordered_json bos = token_text("tokenizer.ggml.bos_token_id");
  const bool add_bos = file.has("tokenizer.ggml.add_bos_token") ? file.get_bool("tokenizer.ggml.add_bos_token")
                                                                 : pre != "gpt-2" && pre != "qwen2" && !bos.is_null();
  const ordered_json post = add_bos && !bos.is_null()
                                ? bos_template(bos.get<std::string>(), file.get_int("tokenizer.ggml.bos_token_id"))
                                : ordered_json(nullptr);
  ordered_json tokenizer = {{"version", "1.0"},
                            {"added_tokens", added},
                            {"normalizer", splitting.normalizer},
                            {"pre_tokenizer", splitting.pre_tokenizer},
                            {"post_processor", post},
                            {"decoder", byte_level(true)},
                            {"model", {{"type", "BPE"}, {"ignore_merges", splitting.ignore_merges}, {"vocab", vocab},
                                       {"merges", merges}}}};
  ordered_json config = {{"bos_token", bos}, {"eos_token", token_text("tokenizer.ggml.eos_token_id")},
                         {"add_bos_token", add_bos}};
  if (file.has("tokenizer.ggml.padding_token_id")) config["pad_token"] = token_text("tokenizer.ggml.padding_token_id");
  if (file.has("tokenizer.chat_template")) config["chat_template"] = file.get_string("tokenizer.chat_template");
  return {tokenizer.dump(), config.dump()};
}

void add_metadata(const TokenizerFiles& files, const HfTokenizer& tokenizer, int64_t rows, GgufWriter& out) {
  const ordered_json j = parse_json(files.tokenizer_json, "tokenizer.json");
  const std::string pre = pre_name(j);
  check(!pre.empty(), "GGUF export: llama.cpp would tokenize differently: the tokenizer's pre-tokenizer, normalizer, "
                      "ignore_merges or added tokens' lstrip/rstrip/single_word are none of GPT-2's, Llama 3's or "
                      "Qwen2's");
  std::vector<std::string> tokens(static_cast<size_t>(rows));
  std::vector<int64_t> types(static_cast<size_t>(rows), kUnused);
  const auto place = [&](int64_t id, const std::string& text, int32_t type) {
    if (id < 0 || id >= rows)  // (per token: the message is built only on failure)
      throw Error("GGUF export: token id " + std::to_string(id) + " is outside the model's " + std::to_string(rows) +
                  " embedding rows");
    tokens[static_cast<size_t>(id)] = text;
    types[static_cast<size_t>(id)] = type;
  };
  check(j.contains("model") && j["model"].contains("vocab") && j["model"]["vocab"].is_object(),
        "GGUF export: tokenizer.json has no model.vocab");
  for (const auto& [text, id] : j["model"]["vocab"].items()) place(id.get<int64_t>(), text, kNormal);
  for (const ordered_json& a : j.value("added_tokens", ordered_json::array()))
    place(a.at("id").get<int64_t>(), a.at("content").get<std::string>(), a.value("special", false) ? kControl : kUserDefined);
  for (int64_t id = 0; id < rows; ++id)
    if (types[static_cast<size_t>(id)] == kUnused) tokens[static_cast<size_t>(id)] = "[PAD" + std::to_string(id) + "]";
  std::unordered_set<std::string_view> seen;  // llama.cpp aborts on two ids with one text
  for (size_t id = 0; id < tokens.size(); ++id)
    if (!seen.insert(tokens[id]).second)
      throw Error("GGUF export: token " + std::to_string(id) + " has the text of another token ('" +
                  tokens[id].substr(0, 64) + "'), which llama.cpp cannot load");
  std::vector<std::string> merges;
  for (const ordered_json& m : j["model"].value("merges", ordered_json::array()))
    merges.push_back(m.is_string() ? m.get<std::string>() : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());
  out.set("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
  out.set("tokenizer.ggml.pre", GgufValue::of_string(pre));
  out.set("tokenizer.ggml.tokens", GgufValue::of_strings(std::move(tokens)));
  out.set("tokenizer.ggml.token_type", GgufValue::of_i32s(std::move(types)));
  out.set("tokenizer.ggml.merges", GgufValue::of_strings(std::move(merges)));
  if (tokenizer.bos_id() >= 0) out.set("tokenizer.ggml.bos_token_id", GgufValue::of_u32(static_cast<uint32_t>(tokenizer.bos_id())));
  if (tokenizer.eos_id() >= 0) out.set("tokenizer.ggml.eos_token_id", GgufValue::of_u32(static_cast<uint32_t>(tokenizer.eos_id())));
  const ordered_json config = files.config_json.empty() ? ordered_json::object()
                                                        : parse_json(files.config_json, "tokenizer_config.json");
  const std::string pad = special_token_text(config, "pad_token");
  if (!pad.empty() && tokenizer.token_id(pad) >= 0)
    out.set("tokenizer.ggml.padding_token_id", GgufValue::of_u32(static_cast<uint32_t>(tokenizer.token_id(pad))));
  out.set("tokenizer.ggml.add_bos_token", GgufValue::of_bool(tokenizer.adds_bos()));
  out.set("tokenizer.ggml.add_eos_token", GgufValue::of_bool(false));
  if (config.contains("chat_template")) {
    const ordered_json& t = config["chat_template"];
    if (t.is_string()) {
      out.set("tokenizer.chat_template", GgufValue::of_string(t.get<std::string>()));
    } else if (t.is_array()) {
      for (const ordered_json& named : t)
        if (named.is_object() && named.value("name", "") == "default" && named.contains("template") && named["template"].is_string())
          out.set("tokenizer.chat_template", GgufValue::of_string(named["template"].get<std::string>()));
    }
  }
}

}  // namespace

// nlohmann's exceptions (text that is not UTF-8 in a token, a merge or a template; a value of another
// type in tokenizer.json) become frugal's one-line errors naming the file.
TokenizerFiles tokenizer_files_from_gguf(const GgufFile& file) {
  try {
    return rebuild_from_gguf(file);
  } catch (const nlohmann::json::exception& e) {
    throw Error(file.path() + ": the tokenizer metadata cannot be read as Hugging Face's files (" + e.what() + ")");
  }
}

void write_tokenizer_metadata(const TokenizerFiles& files, const HfTokenizer& tokenizer, int64_t rows, GgufWriter& out) {
  try {
    add_metadata(files, tokenizer, rows, out);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("GGUF export: the tokenizer's tokenizer.json has an unexpected value (") + e.what() + ")");
  }
}

}  // namespace frugal
