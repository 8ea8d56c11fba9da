#pragma once
// GELU, tanh form (GPT-2).
#include "nn/layer.h"

namespace frugal {

class Gelu : public Layer {
 public:
  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;  // saves x
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  std::string kind() const override { return "gelu"; }
  // Reads and writes fp16/bf16 itself (elementwise: no fp32 copies needed on any CPU).
  bool computes_in(DType half) const override { return true; }
};

}  // namespace frugal
