// The chat template a model ships (tokenizer_config.json) and the globals Hugging Face renders it with.
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "text/gguf_vocab.h"
#include "text/chat_examples.h"
#include "text/hf_json.h"

namespace frugal {

namespace {

using ordered_json = nlohmann::ordered_json;

// chat_template: a string, or a list of {"name", "template"} of which "default" is the one
// apply_chat_template uses without a name.
std::string template_source(const ordered_json& config, const std::string& where) {
  if (!config.contains("chat_template") || config["chat_template"].is_null()) return {};
  const ordered_json& t = config["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  check(t.is_array(), where + ": chat_template is neither a string nor a list of named templates");
  for (const ordered_json& named : t)
    if (named.is_object() && named.value("name", "") == "default" && named.contains("template") &&
        named["template"].is_string())
      return named["template"].get<std::string>();
  throw Error(where + ": chat_template lists no template named \"default\" (pass --chat-template FILE)");
}

// The tokenizer_config.json beside the tokenizer files (`dir`, or a tokenizer.json file in it; a GGUF
// file's, rebuilt from its metadata).
ordered_json read_config(std::string dir) {
  if (is_gguf_file(dir)) {
    const std::string config = tokenizer_files_from_gguf(GgufFile::open(dir)).config_json;
    return config.empty() ? ordered_json::object() : ordered_json::parse(config);
  }
  if (std::filesystem::is_regular_file(dir)) dir = std::filesystem::path(dir).parent_path().string();
  const std::string path = (std::filesystem::path(dir) / "tokenizer_config.json").string();
  if (dir.empty() || !std::filesystem::exists(path)) return ordered_json::object();
  try {
    ordered_json j = ordered_json::parse(read_file(path));
    check(j.is_object(), path + ": not a JSON object");
    return j;
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": " + e.what());
  }
}

// The tokens that end a turn: EOS, then the usual end-of-turn tokens this vocabulary has (an
// instruct model's EOS may be the base model's "<|end_of_text|>" while its turns end in "<|eot_id|>").
std::vector<std::string> end_of_turn_tokens(const std::string& eos, const TextTokenizer& tokenizer) {
  std::vector<std::string> out;
  if (!eos.empty()) out.push_back(eos);
  const int32_t separator = tokenizer.document_separator();
  if (separator >= 0) out.push_back(tokenizer.token_bytes(separator));
  for (const char* t : {"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>", "</s>", "<|endoftext|>"})
    for (int64_t id = 0; id < tokenizer.vocab_size(); ++id)  // (only at load: a linear scan is fine)
      if (tokenizer.token_bytes(static_cast<int32_t>(id)) == t) {
        out.push_back(t);
        break;
      }
  return out;
}

}  // namespace

ChatRendering load_chat_rendering(const std::string& tokenizer_dir, const std::string& template_file,
                                  const std::string& kwargs_json, const TextTokenizer& tokenizer) {
  ChatRendering r;
  const ordered_json config = read_config(tokenizer_dir);
  const std::string where = tokenizer_dir + "/tokenizer_config.json";
  r.bos_token = special_token_text(config, "bos_token");
  r.eos_token = special_token_text(config, "eos_token");
  if (r.eos_token.empty() && tokenizer.document_separator() >= 0)
    r.eos_token = tokenizer.token_bytes(tokenizer.document_separator());
  std::string source = template_file.empty() ? template_source(config, where) : read_file(template_file);
  if (!source.empty())
    r.chat_template = jinja::Template::parse(source, template_file.empty() ? where + " chat_template" : template_file);
  if (!kwargs_json.empty()) {
    try {
      r.kwargs = ordered_json::parse(kwargs_json);
    } catch (const nlohmann::json::exception& e) {
      throw Error("--chat-template-kwargs: not JSON (" + std::string(e.what()) + ")");
    }
    check(r.kwargs.is_object(), "--chat-template-kwargs: expected a JSON object such as {\"enable_thinking\": false}");
  }
  r.end_of_turn = end_of_turn_tokens(r.eos_token, tokenizer);
  return r;
}

// The globals Hugging Face's apply_chat_template passes: messages, add_generation_prompt, the special
// tokens the tokenizer has, and the caller's extra variables.
ordered_json chat_context(const ChatRendering& r, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  ordered_json context = ordered_json::object();
  ordered_json list = ordered_json::array();
  for (const ChatMessage& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  context["messages"] = std::move(list);
  context["add_generation_prompt"] = add_generation_prompt;
  if (!r.bos_token.empty()) context["bos_token"] = r.bos_token;
  if (!r.eos_token.empty()) context["eos_token"] = r.eos_token;
  for (const auto& [key, value] : r.kwargs.items()) context[key] = value;
  return context;
}

std::string render_chat(const ChatRendering& rendering, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
  check(rendering.chat_template.has_value(),
        "the model has no chat template (tokenizer_config.json has no chat_template): pass --chat-template FILE");
  return rendering.chat_template->render(chat_context(rendering, messages, add_generation_prompt)).text;
}

}  // namespace frugal
