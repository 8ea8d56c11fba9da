#include "nn/conv2d.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/error.h"
#include "core/work_meter.h"
#include "core/tensor_init.h"
#include "kernels/conv.h"
#include "kernels/convert.h"
#include "kernels/gemm.h"

namespace frugal {

Conv2d::Conv2d(std::string prefix, int64_t in_channels, int64_t out_channels, int64_t kernel_size,
               int64_t stride, int64_t padding, bool bias, uint64_t seed)
    : prefix_(std::move(prefix)),
      in_channels_(in_channels),
      out_channels_(out_channels),
      kernel_(kernel_size),
      stride_(stride),
      padding_(padding),
      has_bias_(bias) {
  check(in_channels > 0 && out_channels > 0 && kernel_size > 0 && stride > 0 && padding >= 0,
        "conv2d " + prefix_ + ": channels, kernel size and stride must be positive, padding >= 0");
  weight_.name = prefix_ + ".weight";
  weight_.value = Tensor::empty({out_channels, in_channels, kernel_size, kernel_size}, DType::F32,
                                MemCategory::Params);
  if (has_bias_) {
    bias_.name = prefix_ + ".bias";
    bias_.value = Tensor::empty({out_channels}, DType::F32, MemCategory::Params);
  }
  reset_parameters(seed);
}

void Conv2d::reset_parameters(uint64_t seed) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_channels_ * kernel_ * kernel_));
  init_uniform(weight_.value, seed, name_stream(weight_.name), bound);
  if (has_bias_) init_uniform(bias_.value, seed, name_stream(bias_.name), bound);
}

void Conv2d::collect_params(std::vector<Param*>& out) {
  out.push_back(&weight_);
  if (has_bias_) out.push_back(&bias_);
}

void Conv2d::check_input(const Tensor& x) const {
  const std::string me = "conv2d " + prefix_ + ": ";
  check(x.dtype() == DType::F32, me + "expected an f32 input, got " + dtype_name(x.dtype()));
  check(x.ndim() == 4, me + "expected input [N, C, H, W], got " + x.shape().str());
  check(x.dim(1) == in_channels_, me + "expected input with " + std::to_string(in_channels_) +
                                      " channels, got " + x.shape().str());
  check(x.dim(2) + 2 * padding_ >= kernel_ && x.dim(3) + 2 * padding_ >= kernel_,
        me + "input " + x.shape().str() + " is smaller than the " + std::to_string(kernel_) + "x" +
            std::to_string(kernel_) + " kernel");
}

Tensor Conv2d::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  check_input(x);  // x: (N, Cin, H, W)
  const int64_t N = x.dim(0);
  const ConvGeometry g{in_channels_, x.dim(2), x.dim(3), kernel_, kernel_, stride_, padding_};
  const int64_t Ho = g.out_h(), Wo = g.out_w();
  const int64_t K = g.col_rows(), P = g.col_cols();  // GEMM inner size Cin*k*k, pixels Ho*Wo
  const bool direct = kernel_ == 1 && stride_ == 1 && padding_ == 0;  // x already is col

  Tensor y = Tensor::empty({N, out_channels_, Ho, Wo}, DType::F32, MemCategory::Activations);  // (N, Cout, Ho, Wo)
  Tensor col;  // (Cin*k*k, Ho*Wo), one image at a time to keep the workspace small
  if (!direct) col = Tensor::empty({K, P}, DType::F32, MemCategory::Workspace);
  saved.tensors = {x};
  const Tensor w_t = widen(weight_.value);                      // (Cout, Cin*k*k) fp32
  const Tensor b_t = has_bias_ ? widen(bias_.value) : Tensor();  // (Cout)
  count_gemm(out_channels_, P, K, GemmUnits::F32, N);
  if (measuring(x)) return y;

  const float* w = w_t.f32();
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x.f32() + n * in_channels_ * g.height * g.width;  // (Cin, H, W)
    float* yn = y.f32() + n * out_channels_ * P;                        // (Cout, Ho*Wo)
    const float* cn = xn;
    if (!direct) {
      im2col(xn, g, col.f32());
      cn = col.f32();
    }
    float beta = 0.0f;
    if (has_bias_) {  // start from the bias and let the GEMM add to it
      const float* b = b_t.f32();
#pragma omp parallel for schedule(static)
      for (int64_t co = 0; co < out_channels_; ++co)
        for (int64_t p = 0; p < P; ++p) yn[co * P + p] = b[co];
      beta = 1.0f;
    }
    gemm(false, false, out_channels_, P, K, 1.0f, w, K, cn, P, beta, yn, P);
  }
  return y;
}

Tensor Conv2d::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  check(saved.tensors.size() == 1, "conv2d " + prefix_ + ": backward without a saved forward");
  const Tensor x = saved.tensors[0];  // (N, Cin, H, W)
  const int64_t N = x.dim(0);
  const ConvGeometry g{in_channels_, x.dim(2), x.dim(3), kernel_, kernel_, stride_, padding_};
  const int64_t K = g.col_rows(), P = g.col_cols();
  check(dy.dtype() == DType::F32 && dy.shape() == Shape({N, out_channels_, g.out_h(), g.out_w()}),
        "conv2d " + prefix_ + ": gradient " + dy.shape().str() + " does not match the output of input " +
            x.shape().str());
  const bool direct = kernel_ == 1 && stride_ == 1 && padding_ == 0;
  const bool weight_grad = weight_.trainable, bias_grad = has_bias_ && bias_.trainable;

  Tensor dx;  // (N, Cin, H, W); none when the input is data (first layer of the chain)
  if (rc.input_grad) dx = Tensor::empty(x.shape(), DType::F32, MemCategory::Workspace);
  Tensor col;  // (Cin*k*k, Ho*Wo): first im2col(x_n) for dW, then W^T dy_n for dx
  if (!direct) col = Tensor::empty({K, P}, DType::F32, MemCategory::Workspace);
  if (weight_grad) weight_.ensure_grad();
  if (bias_grad) bias_.ensure_grad();
  const Tensor w_t = widen(weight_.value);  // (Cout, Cin*k*k) fp32
  if (weight_grad) count_gemm(out_channels_, K, P, GemmUnits::F32, N);  // dW += dy_n col_n^T
  if (dx.defined()) count_gemm(K, P, out_channels_, GemmUnits::F32, N);  // W^T dy_n
  if (measuring(dy) || measuring(x)) return dx;

  const float* w = w_t.f32();
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x.f32() + n * in_channels_ * g.height * g.width;  // (Cin, H, W)
    const float* dyn = dy.f32() + n * out_channels_ * P;                // (Cout, Ho*Wo)
    if (weight_grad) {  // dW (Cout, K) += dy_n (Cout, P) * col_n^T (P, K)
      const float* cn = xn;
      if (!direct) {
        im2col(xn, g, col.f32());
        cn = col.f32();
      }
      gemm(false, true, out_channels_, K, P, 1.0f, dyn, P, cn, P, 1.0f, weight_.grad.f32(), K);
    }
    if (bias_grad) {
      float* db = bias_.grad.f32();
#pragma omp parallel for schedule(static)
      for (int64_t co = 0; co < out_channels_; ++co) {
        double s = 0.0;
        for (int64_t p = 0; p < P; ++p) s += dyn[co * P + p];
        db[co] += static_cast<float>(s);
      }
    }
    if (!rc.input_grad) continue;
    float* dxn = dx.f32() + n * in_channels_ * g.height * g.width;  // (Cin, H, W)
    if (direct) {  // dx_n (K, P) = W^T (K, Cout) * dy_n (Cout, P)
      gemm(true, false, K, P, out_channels_, 1.0f, w, K, dyn, P, 0.0f, dxn, P);
    } else {  // the same product into col, then folded back onto the image
      gemm(true, false, K, P, out_channels_, 1.0f, w, K, dyn, P, 0.0f, col.f32(), P);
      std::fill(dxn, dxn + in_channels_ * g.height * g.width, 0.0f);
      col2im(col.f32(), g, dxn);
    }
  }
  return dx;
}

}  // namespace frugal
