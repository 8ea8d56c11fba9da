#pragma once
// 2-D convolution over NCHW input by im2col + GEMM (kernels/conv.h, kernels/gemm.h).
//
// Parameters (PyTorch names and layout): <prefix>.weight [Cout, Cin, k, k], <prefix>.bias [Cout].
// Saved for backward: the input x itself (a reference, no copy). The im2col matrix is rebuilt in
// backward rather than kept, because it is k*k times larger than x.
// Memory per forward: output N*Cout*Ho*Wo*4 bytes (Activations) and, while the forward runs,
// one image's im2col matrix Cin*k*k*Ho*Wo*4 bytes (Workspace). Backward: dx N*Cin*H*W*4 bytes
// plus the same im2col matrix (Workspace). A 1x1 convolution with stride 1 and no padding needs
// no im2col matrix: the image already is one.
#include <cstdint>
#include <string>

#include "nn/layer.h"

namespace frugal {

class Conv2d : public Layer {
 public:
  // Parameters are allocated in the current ledger and initialised as PyTorch does
  // (uniform in +-1/sqrt(Cin*k*k) for weight and bias), drawn from `seed` and the prefix.
  Conv2d(std::string prefix, int64_t in_channels, int64_t out_channels, int64_t kernel_size,
         int64_t stride = 1, int64_t padding = 0, bool bias = true, uint64_t seed = 0);

  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  void collect_params(std::vector<Param*>& out) override;
  std::string kind() const override { return "conv2d"; }

  void reset_parameters(uint64_t seed);
  Param& weight() { return weight_; }
  Param& bias() { return bias_; }  // undefined value when built without bias
  bool has_bias() const { return has_bias_; }

 private:
  void check_input(const Tensor& x) const;

  std::string prefix_;
  int64_t in_channels_, out_channels_, kernel_, stride_, padding_;
  bool has_bias_;
  Param weight_;  // (Cout, Cin, k, k)
  Param bias_;    // (Cout)
};

}  // namespace frugal
