#pragma once
// The config.json of Hugging Face Llama-family models (issue 20): model_type "llama" (Llama 2/3,
// SmolLM, TinyLlama), "qwen2" (the same with biases on q/k/v) and "qwen3" (an RMSNorm on each query
// and key head before the rotation, usually a head_dim other than hidden_size / heads). Keys and
// defaults as Hugging Face's LlamaConfig / Qwen2Config / Qwen3Config; a key frugal cannot honour is
// refused with its name.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace frugal {

struct LlamaConfig {
  std::string model_type = "llama";  // "llama" | "qwen2" | "qwen3"
  int64_t hidden_size = 64;
  int64_t intermediate_size = 172;
  int64_t num_hidden_layers = 2;
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 2;
  int64_t explicit_head_dim = 0;  // config.json's head_dim; 0: hidden_size / num_attention_heads
  int64_t vocab_size = 256;
  int64_t max_position_embeddings = 128;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // llama, qwen3: q, k, v and o; qwen2 always has q/k/v biases, never o's
  bool mlp_bias = false;
  nlohmann::json rope_scaling;  // null, or {"rope_type": "llama3", "factor", ...}
  nlohmann::json bos_token_id, eos_token_id;  // as the file has them (eos may be a list); null when absent

  nlohmann::json to_json() const;
  static LlamaConfig from_json(const nlohmann::json& j);  // one-line errors naming the key
  void validate() const;

  // The width of each attention head; the attention's width is num_attention_heads * head_dim().
  int64_t head_dim() const { return explicit_head_dim > 0 ? explicit_head_dim : hidden_size / num_attention_heads; }
  bool qkv_bias() const { return model_type == "qwen2" || attention_bias; }
  bool o_bias() const { return model_type != "qwen2" && attention_bias; }
  bool qk_norm() const { return model_type == "qwen3"; }  // q_norm / k_norm over each head's head_dim values
  // The rotary embedding's inverse frequencies, rope_scaling applied (kernels/rope.h).
  std::vector<float> rope_frequencies() const;
};

}  // namespace frugal
