#include "nn/gelu.h"

#include "kernels/gelu.h"

namespace frugal {

Tensor Gelu::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), MemCategory::Activations);  // in x's type
  saved.tensors = {x};
  if (measuring(x)) return y;
  if (x.dtype() == DType::F32) gelu_forward(x.f32(), y.f32(), x.numel());
  else gelu_forward_half(x.dtype(), x.u16(), y.u16(), x.numel());
  return y;
}

Tensor Gelu::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  const Tensor& x = saved.tensors.at(0);
  Tensor dx = Tensor::empty(x.shape(), DType::F32, MemCategory::Workspace);
  if (measuring(dy)) return dx;
  if (x.dtype() == DType::F32) gelu_backward(x.f32(), dy.f32(), dx.f32(), x.numel());
  else gelu_backward_half(x.dtype(), x.u16(), dy.f32(), dx.f32(), x.numel());
  return dx;
}

}  // namespace frugal
