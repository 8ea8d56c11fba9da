#pragma once
// 2-D max and average pooling over NCHW input: square window, no padding, floor output size
// (PyTorch's MaxPool2d / AvgPool2d defaults). stride 0 means stride = kernel_size, as
// PyTorch's stride=None.
//
// Saved for backward:
//   MaxPool2d: the argmax indices, an I32 tensor (N, C, Ho, Wo) = N*C*Ho*Wo*4 new bytes
//              (Activations), and not the input, so the input can be freed.
//   AvgPool2d: nothing.
// Both allocate their output N*C*Ho*Wo*4 bytes (Activations); backward allocates dx
// N*C*H*W*4 bytes (Workspace).
// A Saved holds tensors only, so the input's H and W, which the output size does not determine
// (floor), are remembered from the last forward; a chain feeds a layer one image size.
#include <cstdint>
#include <string>

#include "nn/layer.h"

namespace frugal {

class MaxPool2d : public Layer {
 public:
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0);
  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  std::string kind() const override { return "maxpool2d"; }

 private:
  int64_t kernel_, stride_;
};

class AvgPool2d : public Layer {
 public:
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0);
  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  std::string kind() const override { return "avgpool2d"; }

 private:
  int64_t kernel_, stride_;
};

}  // namespace frugal
