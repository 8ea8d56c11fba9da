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
  // dx in dy's type: a half dy (from a layer on the half units) gives a half dx for the next one.
  Tensor dx = Tensor::empty(x.shape(), dy.dtype(), MemCategory::Workspace);
  if (measuring(dy)) return dx;
  if (x.dtype() == DType::F32) gelu_backward(x.f32(), dy.f32(), dx.f32(), x.numel());
  else if (dy.dtype() == DType::F32) gelu_backward_half(x.dtype(), x.u16(), dy.f32(), dx.f32(), x.numel());
  else gelu_backward_half(x.dtype(), x.u16(), dy.u16(), dx.u16(), x.numel());
  return dx;
}

}  // namespace frugal
