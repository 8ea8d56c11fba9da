// The tokens a tokenizer.json adds around a text (its post_processor's template) and the BOS/EOS
// tokens (tokenizer_config.json's names, else the template's).
#include <cstdint>

#include <nlohmann/json.hpp>

#include "text/hf_json.h"
#include "text/hf_tokenizer.h"

namespace frugal {

namespace {

using nlohmann::json;

// TemplateProcessing's "single" template: the special tokens before sequence A go to `prefix`, the
// ones after it to `suffix`.
void read_template(const json& j, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix, const std::string& source) {
  if (!j.contains("single") || !j["single"].is_array())
    throw Error(source + ": the TemplateProcessing post_processor has no \"single\" template");
  bool after = false;
  for (const json& item : j["single"]) {
    if (item.contains("Sequence")) {
      after = true;
      continue;
    }
    if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id"))
      throw Error(source + ": template item " + shown(item.dump()) + " is neither a Sequence nor a SpecialToken");
    const std::string name = item["SpecialToken"]["id"].get<std::string>();
    const json& special = j.value("special_tokens", json::object());
    if (!special.contains(name) || !special[name].contains("ids") || !special[name]["ids"].is_array())
      throw Error(source + ": the template names " + name + ", which its special_tokens do not define");
    for (const json& id : special[name]["ids"]) {
      // (get<int32_t> of 1e300 is undefined behaviour, and -1 would pass checked_id as "none")
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
        throw Error(source + ": the template's " + name + " has id " + shown(id.dump()) + ", not a token id");
      (after ? suffix : prefix).push_back(id.get<int32_t>());
    }
  }
}

}  // namespace

void HfTokenizer::read_post_processor(const json& j, const std::string& source) {
  const std::string type = type_of(j);
  if (type == "null" || type == "ByteLevel") return;  // ByteLevel only trims offsets
  if (type == "Sequence" && j.contains("processors") && j["processors"].is_array()) {
    for (const json& p : j["processors"]) read_post_processor(p, source);
  } else if (type == "TemplateProcessing") {
    read_template(j, template_prefix_, template_suffix_, source);
  } else {
    throw unsupported_tokenizer(source, "post_processor " + type);
  }
  for (int32_t id : template_prefix_) checked_id(id, (source + ": the template's token").c_str());
  for (int32_t id : template_suffix_) checked_id(id, (source + ": the template's token").c_str());
}

void HfTokenizer::read_special_names(std::string_view config_json, const std::string& source) {
  if (!config_json.empty()) {
    const std::string where = "the tokenizer_config.json beside " + source;
    json config;
    try {
      config = json::parse(config_json);
    } catch (const json::exception& e) {
      throw Error(where + " is not valid JSON (" + e.what() + ")");
    }
    for (const auto& [key, id] : {std::pair{"bos_token", &bos_id_}, std::pair{"eos_token", &eos_id_}}) {
      const std::string name = config.is_object() ? special_token_text(config, key) : "";
      if (name.empty()) continue;
      *id = token_id(name);
      check(*id >= 0, where + ": its " + key + " '" + name + "' is not a token of the tokenizer");
    }
  }
  if (bos_id_ < 0 && !template_prefix_.empty()) bos_id_ = template_prefix_.front();
  if (eos_id_ < 0 && !template_suffix_.empty()) eos_id_ = template_suffix_.back();
  if (eos_id_ < 0) eos_id_ = token_id("<|endoftext|>");  // GPT-2's and Qwen2's end of text, named by no file
}

void HfTokenizer::apply_model_config(const nlohmann::json& config) {
  const auto id = [&](const char* key) -> int32_t {
    if (!config.is_object() || !config.contains(key)) return -1;
    const nlohmann::json& v = config[key].is_array() && !config[key].empty() ? config[key][0] : config[key];
    return v.is_number_integer() ? v.get<int32_t>() : -1;
  };
  if (id("bos_token_id") >= 0) set_bos_id(id("bos_token_id"));
  if (id("eos_token_id") >= 0) set_eos_id(id("eos_token_id"));
}

}  // namespace frugal
