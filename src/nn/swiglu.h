#pragma once
// SwiGLU's gate (Llama's MLP, issue 20): the gate and up projections side by side,
// gu (..., 2F) = [gate | up] -> silu(gate) * up (..., F) (kernels/swiglu.h). Saves gu.
#include "nn/layer.h"

namespace frugal {

class SwiGlu : public Layer {
 public:
  Tensor forward(const Tensor& gu, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  std::string kind() const override { return "swiglu"; }
};

}  // namespace frugal
