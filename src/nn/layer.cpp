#include "nn/layer.h"

namespace frugal {

const Tensor& Param::ensure_grad() {
  if (!grad.defined()) grad = Tensor::zeros(value.shape(), DType::F32, MemCategory::Grads);
  return grad;
}

}  // namespace frugal
