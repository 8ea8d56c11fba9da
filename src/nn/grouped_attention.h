#pragma once
// Llama's attention core (no projections; issue 20): rotary positions on q and k, then causal
// attention in which H query heads share Hkv key/value heads (grouped-query attention; Hkv = H is
// plain multi-head attention). Input: the three projections side by side,
//   packed (B, T, A + 2 Dkv) = [q (H heads) | k (Hkv heads) | v (Hkv heads)], heads hd wide,
// A = H hd and Dkv = Hkv hd, output y (B, T, A). (A is the model's width D except where config.json
// sets a head_dim of its own, as Qwen3's do.) The attention itself is CausalSelfAttention's (both
// kernels): the shared heads are repeated for their groups into its (B, T, 3A) layout
// (kernels/grouped_heads.h), and its backward's per-head key/value gradients summed back per group.
#include <vector>

#include "nn/attention.h"

namespace frugal {

class GroupedQueryAttention : public Layer {
 public:
  // inverse_frequencies: the rotary embedding's (kernels/rope.h; head_dim / 2 of them).
  GroupedQueryAttention(int64_t heads, int64_t kv_heads, int64_t head_dim, std::vector<float> inverse_frequencies);
  // Positions 0..T-1. Saves the rotated projections (B, T, A + 2 Dkv) and what the inner attention
  // saves but its (B, T, 3A) qkv (its probabilities or output and statistics): backward expands the
  // shared heads into that qkv again.
  Tensor forward(const Tensor& packed, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;  // -> dpacked fp32
  // Generation: packed (1, T, A + 2 Dkv) fp32 at positions cache.length() .. +T-1 against `layer`'s
  // part of a cache of Hkv heads; returns y (1, T, A). Saves nothing.
  Tensor forward_cached(const Tensor& packed, KvCache& cache, int64_t layer);
  std::string kind() const override { return "grouped_attention"; }
  // Takes half inputs as they are: it widens its input itself, and hands the inner attention (a
  // child, through forward_child) its qkv and the gradient as that one takes them.
  bool computes_in(DType half) const override { return true; }

  CausalSelfAttention& attention() { return attn_; }
  const CausalSelfAttention& attention() const { return attn_; }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t packed_width() const { return width_ + 2 * kv_heads_ * head_dim_; }

 private:
  int64_t heads_, kv_heads_, head_dim_;
  int64_t width_;  // A = H hd: q's width and the output's
  std::vector<float> inverse_frequencies_;
  CausalSelfAttention attn_;
};

}  // namespace frugal
