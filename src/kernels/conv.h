#pragma once
// Convolution and pooling kernels for NCHW float tensors.
//
// Convolution is im2col + GEMM: one image (C, H, W) is unfolded into a matrix
// col (C*kh*kw, Ho*Wo) whose row r = (c*kh + i)*kw + j matches the flattened PyTorch weight
// layout [Cout, Cin, kh, kw], so y (Cout, Ho*Wo) = W (Cout, C*kh*kw) * col. col2im is the
// adjoint (it scatters and adds), which is what the input gradient needs.
//
// Pooling has no padding and floors the output size (PyTorch's defaults, ceil_mode=False).
#include <cstdint>

namespace frugal {

struct ConvGeometry {
  int64_t channels = 0, height = 0, width = 0;  // one input image (C, H, W)
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride = 1, pad = 0;  // the same in both directions
  int64_t out_h() const { return (height + 2 * pad - kernel_h) / stride + 1; }
  int64_t out_w() const { return (width + 2 * pad - kernel_w) / stride + 1; }
  int64_t col_rows() const { return channels * kernel_h * kernel_w; }
  int64_t col_cols() const { return out_h() * out_w(); }
};

// x (C, H, W) -> col (C*kh*kw, Ho*Wo); taps that fall in the padding read 0.
void im2col(const float* x, const ConvGeometry& g, float* col);
// dx (C, H, W) += fold(col (C*kh*kw, Ho*Wo)); the caller zeroes dx first when it wants "=".
void col2im(const float* col, const ConvGeometry& g, float* dx);

struct PoolGeometry {
  int64_t planes = 0;  // N * C: pooling treats every (sample, channel) plane alike
  int64_t height = 0, width = 0;
  int64_t kernel = 2, stride = 2;
  int64_t out_h() const { return (height - kernel) / stride + 1; }
  int64_t out_w() const { return (width - kernel) / stride + 1; }
};

// y (planes, Ho, Wo) = window maxima; argmax (planes, Ho, Wo) = index h*W + w of the maximum
// inside its plane (the first one on ties; a NaN wins, as in PyTorch).
void maxpool2d_forward(const float* x, const PoolGeometry& g, float* y, int32_t* argmax);
// dx (planes, H, W) = dy scattered to the argmax positions (overwrites dx).
void maxpool2d_backward(const float* dy, const int32_t* argmax, const PoolGeometry& g, float* dx);

// y (planes, Ho, Wo) = window means (divisor kernel*kernel).
void avgpool2d_forward(const float* x, const PoolGeometry& g, float* y);
// dx (planes, H, W) = dy / (kernel*kernel) spread over each window (overwrites dx).
void avgpool2d_backward(const float* dy, const PoolGeometry& g, float* dx);

}  // namespace frugal
