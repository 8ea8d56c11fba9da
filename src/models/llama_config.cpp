#include "models/llama_config.h"

#include "core/error.h"
#include "kernels/rope.h"
#include "models/config_json.h"

namespace frugal {

namespace {
double number_or(const nlohmann::json& j, const char* key, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  check(j[key].is_number(), std::string("config.json: '") + key + "' must be a number");
  return j[key].get<double>();
}

bool bool_or(const nlohmann::json& j, const char* key, bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  check(j[key].is_boolean(), std::string("config.json: '") + key + "' must be true or false");
  return j[key].get<bool>();
}

// rope_scaling's type ("rope_type", or "type" in older files); "" when there is no rope_scaling.
std::string rope_scaling_type(const nlohmann::json& j) {
  if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return "";
  const auto& r = j["rope_scaling"];
  check(r.is_object(), "config.json: rope_scaling must be an object or null");
  return r.value("rope_type", r.value("type", std::string()));
}

// Keys whose non-default values change the architecture in ways frugal does not implement.
void refuse_unsupported(const nlohmann::json& j) {
  const std::string act = j.value("hidden_act", std::string("silu"));
  check(act == "silu", "config.json: hidden_act '" + act + "' is not supported (Llama's SwiGLU uses silu)");
  check(!bool_or(j, "use_sliding_window", false), "config.json: use_sliding_window is not supported");
  const std::string rope = rope_scaling_type(j);
  check(rope.empty() || rope == "llama3" || rope == "default",
        "config.json: rope_scaling type '" + rope + "' is not supported (supported: llama3)");
}

std::string architecture_of(const std::string& model_type) {
  if (model_type == "qwen2") return "Qwen2ForCausalLM";
  if (model_type == "qwen3") return "Qwen3ForCausalLM";
  return "LlamaForCausalLM";
}
}  // namespace

nlohmann::json LlamaConfig::to_json() const {
  nlohmann::json j = {{"model_type", model_type},
                      {"architectures", {architecture_of(model_type)}},
                      {"hidden_size", hidden_size},
                      {"intermediate_size", intermediate_size},
                      {"num_hidden_layers", num_hidden_layers},
                      {"num_attention_heads", num_attention_heads},
                      {"num_key_value_heads", num_key_value_heads},
                      {"head_dim", head_dim()},
                      {"vocab_size", vocab_size},
                      {"max_position_embeddings", max_position_embeddings},
                      {"rms_norm_eps", rms_norm_eps},
                      {"rope_theta", rope_theta},
                      {"rope_scaling", rope_scaling},
                      {"tie_word_embeddings", tie_word_embeddings},
                      {"hidden_act", "silu"},
                      {"bos_token_id", bos_token_id},
                      {"eos_token_id", eos_token_id}};
  if (model_type != "qwen2") j["attention_bias"] = attention_bias;
  if (model_type == "llama") j["mlp_bias"] = mlp_bias;
  return j;
}

LlamaConfig LlamaConfig::from_json(const nlohmann::json& j) {
  check(j.is_object(), "config.json: expected a JSON object");
  LlamaConfig c;
  c.model_type = j.value("model_type", std::string());
  check(c.model_type == "llama" || c.model_type == "qwen2" || c.model_type == "qwen3",
        "config.json: model_type '" + c.model_type + "' is not a Llama-family model (supported: llama, qwen2, qwen3)");
  refuse_unsupported(j);
  c.hidden_size = require_int(j, "hidden_size");
  c.intermediate_size = require_int(j, "intermediate_size");
  c.num_hidden_layers = require_int(j, "num_hidden_layers");
  c.num_attention_heads = require_int(j, "num_attention_heads");
  c.num_key_value_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null()
                              ? require_int(j, "num_key_value_heads")
                              : c.num_attention_heads;  // absent: multi-head attention
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    c.explicit_head_dim = require_int(j, "head_dim");
    check(c.explicit_head_dim > 0, "config.json: head_dim = " + std::to_string(c.explicit_head_dim) + " must be positive");
  }
  c.vocab_size = require_int(j, "vocab_size");
  c.max_position_embeddings = require_int(j, "max_position_embeddings");
  c.rms_norm_eps = number_or(j, "rms_norm_eps", 1e-6);
  c.rope_theta = number_or(j, "rope_theta", 10000.0);
  c.tie_word_embeddings = bool_or(j, "tie_word_embeddings", false);
  c.attention_bias = bool_or(j, "attention_bias", false);
  c.mlp_bias = bool_or(j, "mlp_bias", false);
  check(c.model_type != "qwen2" || (!c.attention_bias && !c.mlp_bias),
        "config.json: attention_bias/mlp_bias are not qwen2 keys (qwen2 has its q/k/v biases always)");
  check(c.model_type == "llama" || !c.mlp_bias, "config.json: mlp_bias is a llama key, not " + c.model_type + "'s");
  if (rope_scaling_type(j) == "llama3") c.rope_scaling = j["rope_scaling"];
  c.bos_token_id = j.value("bos_token_id", nlohmann::json());
  c.eos_token_id = j.value("eos_token_id", nlohmann::json());
  c.validate();
  return c;
}

void LlamaConfig::validate() const {
  auto positive = [](int64_t v, const char* name, int64_t max) {
    check(v > 0 && v <= max, std::string("Llama config: ") + name + " = " + std::to_string(v) +
                                 " is out of range (1.." + std::to_string(max) + ")");
  };
  positive(hidden_size, "hidden_size", 1 << 16);
  positive(intermediate_size, "intermediate_size", 1 << 18);
  positive(num_hidden_layers, "num_hidden_layers", 1024);
  positive(num_attention_heads, "num_attention_heads", 1024);
  positive(num_key_value_heads, "num_key_value_heads", 1024);
  positive(vocab_size, "vocab_size", 1 << 24);
  positive(max_position_embeddings, "max_position_embeddings", 1 << 22);
  check(explicit_head_dim > 0 || hidden_size % num_attention_heads == 0,
        "Llama config: hidden_size " + std::to_string(hidden_size) + " is not divisible by num_attention_heads " +
            std::to_string(num_attention_heads) + " (and no head_dim is given)");
  check(explicit_head_dim >= 0 && explicit_head_dim <= (1 << 12),
        "Llama config: head_dim = " + std::to_string(explicit_head_dim) + " is out of range (1..4096)");
  check(num_attention_heads % num_key_value_heads == 0,
        "Llama config: num_attention_heads " + std::to_string(num_attention_heads) +
            " is not divisible by num_key_value_heads " + std::to_string(num_key_value_heads) +
            " (grouped-query attention shares each key/value head among a whole number of query heads)");
  check(head_dim() > 0 && head_dim() % 2 == 0, "Llama config: the head dimension " + std::to_string(head_dim()) +
                                 " must be even (rotary embeddings rotate pairs)");
  check(rms_norm_eps > 0, "Llama config: rms_norm_eps must be positive");
  check(rope_theta > 1, "Llama config: rope_theta must be above 1");
}

std::vector<float> LlamaConfig::rope_frequencies() const {
  std::vector<float> f = rope_inverse_frequencies(head_dim(), rope_theta);
  if (rope_scaling.is_null()) return f;
  try {
    return rope_llama3_scaling(f, rope_scaling.at("factor").get<double>(), rope_scaling.at("low_freq_factor").get<double>(),
                               rope_scaling.at("high_freq_factor").get<double>(),
                               rope_scaling.at("original_max_position_embeddings").get<double>());
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("config.json: rope_scaling llama3 needs numbers factor, low_freq_factor, "
                            "high_freq_factor and original_max_position_embeddings (") + e.what() + ")");
  }
}

}  // namespace frugal
