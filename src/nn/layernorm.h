#pragma once
// LayerNorm over the last dimension (GPT-2: eps 1e-5, affine).
#include "nn/layer.h"

namespace frugal {

class LayerNorm : public Layer {
 public:
  LayerNorm(const std::string& prefix, int64_t dim, float eps);  // prefix.weight (ones), prefix.bias (zeros)
  // (..., D) -> (..., D); saves x, mean (N), rstd (N) with N = rows
  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  void collect_params(std::vector<Param*>& out) override;
  std::string kind() const override { return "layernorm"; }
  // Reads and writes fp16/bf16 rows itself, computing each row in fp32 (no fp32 copies of x and y).
  bool computes_in(DType half) const override { return true; }

 private:
  int64_t dim_;
  float eps_;
  Param weight_, bias_;
};

}  // namespace frugal
