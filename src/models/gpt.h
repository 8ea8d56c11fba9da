#pragma once
// GPT-2, exactly: learned positions, pre-LayerNorm blocks, tanh-GELU, causal attention scaled by
// 1/sqrt(head_dim), final LayerNorm, LM head tied to wte. The chain is
//   [embedding] [block 0] ... [block L-1] [ln_f]  (L + 2 blocks)
// and the tied head, fused with the cross-entropy loss, follows it (lm_head(), models/causal_lm.h).
#include "models/causal_lm.h"
#include "nn/embedding.h"

namespace frugal {

struct GptConfig {
  int64_t n_layer = 4;
  int64_t n_head = 4;
  int64_t n_embd = 128;
  int64_t n_positions = 128;
  int64_t vocab_size = 256;
  double layer_norm_epsilon = 1e-5;
  // Dropout probabilities (HF GPT-2's keys; absent = 0): after the embedding sum, on the attention
  // probabilities, on each residual branch's output.
  double embd_pdrop = 0, attn_pdrop = 0, resid_pdrop = 0;

  nlohmann::json to_json() const;                      // HF GPT-2 keys
  static GptConfig from_json(const nlohmann::json& j);  // clear error on a missing/invalid key
  void validate() const;
};

class Gpt : public CausalLm {
 public:
  explicit Gpt(const GptConfig& config, int64_t context = -1);  // context: training T (default n_positions)
  std::string arch() const override { return "gpt"; }
  nlohmann::json config() const override { return config_.to_json(); }
  void init_weights(uint64_t seed) override;
  void init_param(size_t index, const Tensor& into, uint64_t seed) const override;
  std::vector<std::pair<std::string, Linear*>> adaptable_linears() const override;
  std::string peft_key_prefix() const override { return "base_model.model.transformer."; }
  int64_t vocab_size() const override { return config_.vocab_size; }
  int64_t max_positions() const override { return config_.n_positions; }

  KvCache make_kv_cache(int64_t capacity) const override;
  Tensor forward_cached(const Tensor& tokens, KvCache& cache, const RunContext& rc) override;

  const GptConfig& gpt_config() const { return config_; }
  // The dropout applied while training: after the embedding sum, on the attention probabilities, on
  // each residual branch's output (from the config at construction; flags override).
  void set_dropout(double embd, double attn, double resid) override;
  nlohmann::json dropout() const override;  // {"embd", "attn", "resid"}

 protected:
  std::vector<CausalSelfAttention*> attentions() const override;
  int64_t layers() const override { return config_.n_layer; }

 private:
  GptConfig config_;
  Embedding* embedding_;
  nlohmann::json dropout_;  // the probabilities set_dropout applied
};

}  // namespace frugal
