#include "nn/gelu.h"

#include "kernels/gelu.h"

namespace frugal {

Tensor Gelu::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  Tensor y = Tensor::empty(x.shape(), DType::F32, MemCategory::Activations);
  saved.tensors = {x};
  if (measuring(x)) return y;
  gelu_forward(x.f32(), y.f32(), x.numel());
  return y;
}

Tensor Gelu::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  const Tensor& x = saved.tensors.at(0);
  Tensor dx = Tensor::empty(x.shape(), DType::F32, MemCategory::Workspace);
  if (measuring(dy)) return dx;
  gelu_backward(x.f32(), dy.f32(), dx.f32(), x.numel());
  return dx;
}

}  // namespace frugal
