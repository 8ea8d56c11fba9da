#include "nn/rmsnorm.h"

#include "core/error.h"
#include "core/threading.h"
#include "kernels/convert.h"
#include "kernels/rmsnorm.h"

namespace frugal {

RmsNorm::RmsNorm(const std::string& prefix, int64_t dim, float eps) : dim_(dim), eps_(eps) {
  weight_ = {prefix + ".weight", Tensor::empty({dim}, DType::F32, MemCategory::Params), {}, true};
  weight_.value.fill(1.0f);
}

Tensor RmsNorm::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  (void)rc;
  check(x.ndim() >= 1 && x.dim(-1) == dim_ && x.dtype() == DType::F32,
        "rmsnorm " + weight_.name + ": expected fp32 input (..., " + std::to_string(dim_) + "), got " + x.shape().str());
  const int64_t rows = x.numel() / dim_;
  Tensor y = Tensor::empty(x.shape(), DType::F32, MemCategory::Activations);
  Tensor rstd = Tensor::empty({rows}, DType::F32, MemCategory::Activations);
  saved.tensors = {x};
  saved.stats = {rstd};
  const Tensor w = widen(weight_.value);  // (dim) fp32 (a workspace copy if half)
  if (measuring(x)) return y;
  rmsnorm_forward(x.f32(), w.f32(), y.f32(), rstd.f32(), rows, dim_, eps_);
  return y;
}

Tensor RmsNorm::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  (void)rc;
  const Tensor& x = saved.tensors.at(0);
  const int64_t rows = x.numel() / dim_;
  Tensor dx = Tensor::empty(x.shape(), DType::F32, MemCategory::Workspace);
  Tensor partials = Tensor::empty({per_thread(dim_)}, DType::F32, MemCategory::Workspace);
  // A frozen gain still needs its sums computed by the kernel: they go to scratch.
  Tensor dw = weight_.trainable ? weight_.ensure_grad() : Tensor::zeros({dim_}, DType::F32, MemCategory::Workspace);
  const Tensor w = widen(weight_.value);
  if (measuring(dy)) return dx;
  rmsnorm_backward(x.f32(), w.f32(), saved.stats.at(0).f32(), dy.f32(), dx.f32(), dw.f32(), rows, dim_, partials.f32());
  return dx;
}

void RmsNorm::collect_params(std::vector<Param*>& out) { out.push_back(&weight_); }

}  // namespace frugal
