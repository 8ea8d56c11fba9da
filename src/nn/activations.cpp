#include "nn/activations.h"

#include "core/error.h"

namespace frugal {

namespace {
int64_t per_sample(const Shape& s) {  // d1 * ... * dk; well defined for an empty batch
  int64_t n = 1;
  for (int i = 1; i < s.ndim(); ++i) n *= s[i];
  return n;
}
}  // namespace

Tensor ReLU::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  check(x.dtype() == DType::F32, "relu: expected an f32 input, got " + dtype_name(x.dtype()));
  Tensor y = Tensor::empty(x.shape(), DType::F32, MemCategory::Activations);  // same shape as x
  saved.tensors = {y};
  if (measuring(x)) return y;
  const float* xp = x.f32();
  float* yp = y.f32();
  const int64_t n = x.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] > 0.0f ? xp[i] : 0.0f;
  return y;
}

Tensor ReLU::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  check(saved.tensors.size() == 1, "relu: backward without a saved forward");
  const Tensor& y = saved.tensors[0];
  check(dy.dtype() == DType::F32 && dy.shape() == y.shape(),
        "relu: gradient " + dy.shape().str() + " does not match output " + y.shape().str());
  Tensor dx = Tensor::empty(dy.shape(), DType::F32, MemCategory::Workspace);
  if (measuring(dy) || measuring(y)) return dx;
  const float* yp = y.f32();
  const float* dyp = dy.f32();
  float* dxp = dx.f32();
  const int64_t n = dy.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) dxp[i] = yp[i] > 0.0f ? dyp[i] : 0.0f;
  return dx;
}

Tensor Flatten::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  check(x.ndim() >= 2, "flatten: expected input [N, ...] with at least 2 dimensions, got " + x.shape().str());
  saved.clear();
  saved.shapes = {x.shape()};
  return x.view({x.dim(0), per_sample(x.shape())});  // (N, C*H*W)
}

Tensor Flatten::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  check(saved.shapes.size() == 1, "flatten: backward without a saved forward");
  const Shape& in_shape = saved.shapes[0];
  check(dy.ndim() == 2 && dy.dim(1) == per_sample(in_shape),
        "flatten: gradient " + dy.shape().str() + " does not match input " + in_shape.str());
  return dy.view(in_shape.with(0, dy.dim(0)));  // (N, C, H, W)
}

}  // namespace frugal
