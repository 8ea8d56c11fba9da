#include "nn/swiglu.h"

#include "core/error.h"
#include "kernels/swiglu.h"

namespace frugal {

Tensor SwiGlu::forward(const Tensor& gu, Saved& saved, const RunContext& rc) {
  (void)rc;
  check(gu.ndim() >= 1 && gu.dim(-1) > 0 && gu.dim(-1) % 2 == 0 && gu.dtype() == DType::F32,
        "swiglu: expected fp32 (..., 2F) = [gate | up], got " + gu.shape().str());
  const int64_t F = gu.dim(-1) / 2, N = gu.numel() / (2 * F);
  Tensor y = Tensor::empty(gu.shape().with(-1, F), DType::F32, MemCategory::Activations);  // (..., F)
  saved.tensors = {gu};
  if (!measuring(gu)) swiglu_forward(gu.f32(), y.f32(), N, F);
  return y;
}

Tensor SwiGlu::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  (void)rc;
  const Tensor& gu = saved.tensors.at(0);
  Tensor dgu = Tensor::empty(gu.shape(), DType::F32, MemCategory::Workspace);  // (..., 2F)
  const int64_t F = gu.dim(-1) / 2;
  if (!measuring(dy)) swiglu_backward(gu.f32(), dy.f32(), dgu.f32(), gu.numel() / (2 * F), F);
  return dgu;
}

}  // namespace frugal
