#pragma once
// Shape-preserving activation and reshaping layers for the MLP and CNN chains.
//
// ReLU: allocates its output (numel*4 bytes, Activations) and saves that output, not a mask:
//   y > 0 exactly where x > 0, and the output already exists, so saving it costs no new bytes.
//   Backward allocates dx (numel*4 bytes, Workspace).
// Flatten: [N, d1, ..., dk] -> [N, d1*...*dk] as a view of the input: allocates nothing and
//   saves only the input's shape; backward returns a view of dy with the input's shape.
#include <string>

#include "nn/layer.h"

namespace frugal {

class ReLU : public Layer {
 public:
  ReLU() = default;
  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  std::string kind() const override { return "relu"; }
};

class Flatten : public Layer {
 public:
  Flatten() = default;
  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  std::string kind() const override { return "flatten"; }

};

}  // namespace frugal
