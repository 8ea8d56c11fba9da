#pragma once
// Causal multi-head self-attention core (no projections): qkv (B, T, 3D) -> (B, T, D).
#include "nn/dropout.h"
#include "nn/kv_cache.h"
#include "nn/layer.h"

namespace frugal {

// Which kernel computes the attention: Materialized keeps the softmax probabilities (B, H, T, T)
// for backward (kernels/attention.h); Flash keeps one log-sum-exp per row and recomputes them
// (kernels/flash_attention.h); Auto picks by sequence length (CausalSelfAttention::kernel_for).
enum class AttentionKernel { Auto, Flash, Materialized };

class CausalSelfAttention : public Layer {
 public:
  CausalSelfAttention(int64_t dim, int64_t heads);
  // Materialized saves qkv and the probabilities (B, H, T, T); Flash saves qkv and its output y
  // (the buffer the next layer saves as its input) and the row log-sum-exps (B, H, T) as stats.
  Tensor forward(const Tensor& qkv, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  // Generation (kernels/attention_cached.h): qkv (1, T, 3D) fp32 of the positions cache.length() ..
  // cache.length()+T-1; writes their keys and values into `layer`'s part of the cache and returns
  // y (1, T, D) fp32 Activations, each row attending to every cached position up to its own. Saves
  // nothing (no backward); the caller advances the cache once every layer has run. Grouped-query
  // attention (kv_heads < heads; 0: heads): qkv (1, T, D + 2 Dkv) with k and v of the shared heads,
  // and a cache of kv_heads heads (kernels/attention_cached.h).
  Tensor forward_cached(const Tensor& qkv, KvCache& cache, int64_t layer, int64_t kv_heads = 0);
  std::string kind() const override { return "attention"; }
  // Takes half inputs unless forced onto the materialising kernel on a CPU without half GEMM units
  // (kernels/gemm.h has_half_gemm): the fused kernel widens its tiles itself, and Auto's
  // materialising kernel there widens qkv itself, as forward_child would.
  bool computes_in(DType half) const override;

  int64_t heads() const { return heads_; }
  void set_kernel(AttentionKernel kernel) { kernel_ = kernel; }
  AttentionKernel kernel() const { return kernel_; }
  // Query rows and keys per tile of the fused kernel; 1 .. kFlashMaxTile, else a frugal::Error.
  void set_tile(int64_t tile);
  int64_t tile() const { return tile_; }
  // The kernel a forward over T positions in `dtype` (F32 or the half type) runs.
  AttentionKernel kernel_for(int64_t T, DType dtype) const;
  // Dropout on the attention probabilities (GPT-2's attn_pdrop) while training: masks regenerated
  // in backward, per tile in the fused kernel.
  void set_dropout(float p) { dropout_.p = p; }
  float dropout() const { return dropout_.p; }

 private:
  // The kernel a pass with `rc` runs: the fused one whenever rows hold several examples (Auto).
  AttentionKernel kernel_in(const RunContext& rc, int64_t T, DType dtype) const;
  void count_products(int64_t B, int64_t T, DType type, bool backward, bool flash) const;  // core/work_meter.h
  // The pass's dropout key for (B, H, T, T) probabilities of T positions into `key`; null when off.
  const DropoutKey* dropout_key(const RunContext& rc, int64_t T, DropoutKey& key) const;
  // The pass's example positions (RunContext::positions) for qkv's rows, null when none (or measuring).
  static const int32_t* example_positions(const RunContext& rc, const Tensor& qkv);
  Tensor forward_flash(const Tensor& qkv, Saved& saved, const DropoutKey* drop, const int32_t* positions);
  Tensor backward_flash(const Tensor& dy, Saved& saved, const DropoutKey* drop, const int32_t* positions);
  Tensor forward_widened(const Tensor& qkv, Saved& saved, const RunContext& rc, const DropoutKey* drop);
  Tensor backward_widened(const Tensor& dy, Saved& saved, const RunContext& rc, const DropoutKey* drop);
  Tensor forward_materialized(const Tensor& qkv, Saved& saved, const DropoutKey* drop);
  Tensor backward_materialized(const Tensor& dy, Saved& saved, const DropoutKey* drop);

  int64_t dim_, heads_;
  AttentionKernel kernel_ = AttentionKernel::Auto;
  int64_t tile_;
  DropoutSpec dropout_{0.0f, DropoutSite::AttentionProbabilities};
};

}  // namespace frugal
