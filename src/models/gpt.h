#pragma once
// GPT-2, exactly: learned positions, pre-LayerNorm blocks, tanh-GELU, causal attention scaled by
// 1/sqrt(head_dim), final LayerNorm, LM head tied to wte. The chain is
//   [embedding] [block 0] ... [block L-1] [ln_f]  (L + 2 blocks)
// and the tied head, fused with the cross-entropy loss, follows it (lm_head()).
#include "models/model.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/kv_cache.h"

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

class Gpt : public Model {
 public:
  explicit Gpt(const GptConfig& config, int64_t context = -1);  // context: training T (default n_positions)
  std::string arch() const override { return "gpt"; }
  nlohmann::json config() const override { return config_.to_json(); }
  LossKind loss_kind() const override { return LossKind::CrossEntropy; }
  Shape sample_input_shape() const override { return {context_}; }
  DType input_dtype() const override { return DType::I32; }
  Shape sample_target_shape() const override { return {context_}; }
  DType target_dtype() const override { return DType::I32; }
  void init_weights(uint64_t seed) override;
  void init_param(size_t index, const Tensor& into, uint64_t seed) const override;
  std::vector<std::pair<std::string, Linear*>> adaptable_linears() const override;
  std::string peft_key_prefix() const override { return "base_model.model.transformer."; }
  TiedLmHead* lm_head() override { return head_.get(); }
  nlohmann::json kernels(int64_t micro_batch) const override;

  // Generation with a KV cache (docs/DESIGN-NOTES.md "KV-cached generation"). A cache for
  // `capacity` positions (1..n_positions) of this model's layers and heads.
  KvCache make_kv_cache(int64_t capacity) const;
  // tokens (1, T) int32 at positions cache.length() .. cache.length()+T-1 (T >= 1, within the
  // cache's capacity): runs the chain over them with every attention against the cache, appends
  // their keys and values, advances the cache by T and returns the logits of the last position
  // only, (1, V) fp32 Workspace. Weights as forward_only takes them under rc (fp32 activations).
  Tensor forward_cached(const Tensor& tokens, KvCache& cache, const RunContext& rc);

  const GptConfig& gpt_config() const { return config_; }
  int64_t context() const { return context_; }
  void set_context(int64_t t);
  // Every block's attention kernel and fused-kernel tile (nn/attention.h); Auto by default.
  void set_attention_kernel(AttentionKernel kernel);
  void set_attention_tile(int64_t tile);
  // The dropout applied while training: after the embedding sum, on the attention probabilities, on
  // each residual branch's output (from the config at construction; flags override).
  void set_dropout(double embd, double attn, double resid);
  nlohmann::json dropout() const;  // {"embd", "attn", "resid"}

 private:
  GptConfig config_;
  int64_t context_;
  Embedding* embedding_;
  std::unique_ptr<TiedLmHead> head_;
  nlohmann::json dropout_;  // the probabilities set_dropout applied
};

}  // namespace frugal
