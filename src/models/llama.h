#pragma once
// The Llama family (issue 20): token embedding, decoder layers with RMSNorm, rotary positions,
// grouped-query attention and a SwiGLU MLP (nn/llama_block.h), a final RMSNorm, and the LM head:
// tied to the embedding, or its own lm_head.weight (V, D). The chain is
//   [model.embed_tokens] [layer 0] ... [layer L-1] [model.norm]  (L + 2 blocks)
// Tensor names and layouts are Hugging Face's, so their directories load as they are.
#include "models/causal_lm.h"
#include "models/llama_config.h"
#include "nn/embedding.h"

namespace frugal {

class LlamaBlock;

class Llama : public CausalLm {
 public:
  explicit Llama(const LlamaConfig& config, int64_t context = -1);  // context: training T (default: 2048 at most)
  std::string arch() const override { return "llama"; }
  nlohmann::json config() const override { return config_.to_json(); }
  void init_weights(uint64_t seed) override;
  void init_param(size_t index, const Tensor& into, uint64_t seed) const override;
  // "model.layers.{i}.self_attn.q_proj", ..., "model.layers.{i}.mlp.down_proj"; PEFT's keys put
  // "base_model.model." before them.
  std::vector<std::pair<std::string, Linear*>> adaptable_linears() const override;
  int64_t vocab_size() const override { return config_.vocab_size; }
  int64_t max_positions() const override { return config_.max_position_embeddings; }

  KvCache make_kv_cache(int64_t capacity) const override;
  Tensor forward_cached(const Tensor& tokens, KvCache& cache, const RunContext& rc) override;

  const LlamaConfig& llama_config() const { return config_; }

 protected:
  std::vector<CausalSelfAttention*> attentions() const override;
  int64_t layers() const override { return config_.num_hidden_layers; }
  void collect_head_params(std::vector<Param*>& out) const override;

 private:
  LlamaBlock& block(int64_t layer) const;

  LlamaConfig config_;
  Embedding* embedding_;
  std::unique_ptr<Param> lm_head_weight_;  // untied only: "lm_head.weight" (V, D)
};

}  // namespace frugal
