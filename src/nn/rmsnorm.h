#pragma once
// RMSNorm over the last dimension (Llama's input_layernorm, post_attention_layernorm, model.norm;
// issue 20): y = x / sqrt(mean(x^2) + eps) * weight, no bias, no mean subtracted.
#include "nn/layer.h"

namespace frugal {

class RmsNorm : public Layer {
 public:
  RmsNorm(const std::string& prefix, int64_t dim, float eps);  // prefix.weight (ones)
  // (..., D) -> (..., D); saves x and rstd (N) with N = rows
  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  void collect_params(std::vector<Param*>& out) override;
  std::string kind() const override { return "rmsnorm"; }

 private:
  int64_t dim_;
  float eps_;
  Param weight_;
};

}  // namespace frugal
