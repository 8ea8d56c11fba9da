#pragma once
// Causal multi-head self-attention core (no projections): qkv (B, T, 3D) -> (B, T, D).
#include "nn/layer.h"

namespace frugal {

class CausalSelfAttention : public Layer {
 public:
  CausalSelfAttention(int64_t dim, int64_t heads);
  // saves qkv and the softmax probabilities (B, H, T, T)
  Tensor forward(const Tensor& qkv, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  std::string kind() const override { return "attention"; }
  // Where the CPU has half-precision GEMM units (kernels/gemm.h has_half_gemm).
  bool computes_in(DType half) const override;

 private:
  int64_t dim_, heads_;
};

}  // namespace frugal
