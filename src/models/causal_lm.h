#pragma once
// What every language model of token ids shares (GPT-2, the Llama family): a chain
//   [embedding] [block 0] ... [block L-1] [final norm]
// whose output the LM head, fused with the cross-entropy loss, turns into the loss (lm_head()); a
// training context T; attention kernels to choose; generation with a KV cache.
#include "models/model.h"
#include "nn/attention.h"
#include "nn/kv_cache.h"

namespace frugal {

class CausalLm : public Model {
 public:
  LossKind loss_kind() const override { return LossKind::CrossEntropy; }
  Shape sample_input_shape() const override { return {context_}; }
  DType input_dtype() const override { return DType::I32; }
  Shape sample_target_shape() const override { return {context_}; }
  DType target_dtype() const override { return DType::I32; }
  TiedLmHead* lm_head() override { return head_.get(); }
  nlohmann::json kernels(int64_t micro_batch) const override;

  virtual int64_t vocab_size() const = 0;
  virtual int64_t max_positions() const = 0;  // n_positions / max_position_embeddings
  int64_t context() const { return context_; }
  void set_context(int64_t t);  // 1..max_positions(), else a frugal::Error

  // Every block's attention kernel and fused-kernel tile (nn/attention.h); Auto by default.
  void set_attention_kernel(AttentionKernel kernel);
  AttentionKernel attention_kernel() const;  // as set (Auto unless --attention chose one)
  void set_attention_tile(int64_t tile);
  bool uses_fused_attention() const;  // at context(): the fused (flash) kernel, which has a tile
  // Dropout while training (embedding, attention probabilities, residual branches). Models
  // without dropout refuse anything but zeros.
  virtual void set_dropout(double embd, double attn, double resid);
  virtual nlohmann::json dropout() const;  // {"embd", "attn", "resid"}

  // Generation with a KV cache (docs/DESIGN-NOTES.md "KV-cached generation"): a cache for
  // `capacity` positions (1..max_positions()) of this model's layers and key/value heads.
  virtual KvCache make_kv_cache(int64_t capacity) const = 0;
  // tokens (1, T) int32 at positions cache.length() .. +T-1 (within the cache's capacity): runs the
  // chain over them against the cache, appends their keys and values, advances the cache by T and
  // returns the logits of the last position only, (1, V) fp32 Workspace. fp32 activations only.
  virtual Tensor forward_cached(const Tensor& tokens, KvCache& cache, const RunContext& rc) = 0;

 protected:
  // Every block's attention (the same settings in each); the chain's blocks 1..layers.
  virtual std::vector<CausalSelfAttention*> attentions() const = 0;
  virtual int64_t layers() const = 0;
  // The checks and the last step of forward_cached: the last row of the chain's final hidden
  // states h (1, T, D) through the final norm and the head -> (1, V).
  void check_cached_input(const Tensor& tokens, const KvCache& cache, const RunContext& rc) const;
  Tensor last_logits(const Tensor& h, const RunContext& rc);

  int64_t context_ = 1;
  std::unique_ptr<TiedLmHead> head_;  // logits = h W^T, never held whole in training (nn/lm_head.h)
};

// The model as a language model, or null for models of other data (MLP, CNN).
CausalLm* as_causal_lm(Model& model);
const CausalLm* as_causal_lm(const Model& model);

}  // namespace frugal
