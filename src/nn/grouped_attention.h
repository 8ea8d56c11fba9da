#pragma once
// Llama's attention core (no projections; issue 20): rotary positions on q and k, then causal
// attention in which H query heads share Hkv key/value heads (grouped-query attention; Hkv = H is
// plain multi-head attention). Input: the three projections side by side,
//   packed (B, T, D + 2 Dkv) = [q (H heads) | k (Hkv heads) | v (Hkv heads)], heads hd = D / H wide,
// output y (B, T, D). The attention itself is CausalSelfAttention's (both kernels): the shared heads
// are repeated for their groups into its (B, T, 3D) layout (kernels/grouped_heads.h), and its
// backward's per-head key/value gradients summed back per group.
#include <vector>

#include "nn/attention.h"

namespace frugal {

class GroupedQueryAttention : public Layer {
 public:
  // inverse_frequencies: the rotary embedding's (kernels/rope.h; hd / 2 of them).
  GroupedQueryAttention(int64_t dim, int64_t heads, int64_t kv_heads, std::vector<float> inverse_frequencies);
  // Positions 0..T-1. Saves the rotated projections (B, T, D + 2 Dkv) and what the inner attention
  // saves but its (B, T, 3D) qkv (its probabilities or output and statistics): backward expands the
  // shared heads into that qkv again.
  Tensor forward(const Tensor& packed, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;  // -> dpacked fp32
  // Generation: packed (1, T, D + 2 Dkv) fp32 at positions cache.length() .. +T-1 against `layer`'s
  // part of a cache of Hkv heads; returns y (1, T, D). Saves nothing.
  Tensor forward_cached(const Tensor& packed, KvCache& cache, int64_t layer);
  std::string kind() const override { return "grouped_attention"; }
  // Takes half inputs as they are: it widens its input itself, and hands the inner attention (a
  // child, through forward_child) its qkv and the gradient as that one takes them.
  bool computes_in(DType half) const override { return true; }

  CausalSelfAttention& attention() { return attn_; }
  const CausalSelfAttention& attention() const { return attn_; }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t packed_width() const { return dim_ + 2 * kv_heads_ * head_dim_; }

 private:
  int64_t dim_, heads_, kv_heads_, head_dim_;
  std::vector<float> inverse_frequencies_;
  CausalSelfAttention attn_;
};

}  // namespace frugal
