#include "nn/layernorm.h"

#include "core/error.h"
#include "core/threading.h"
#include "kernels/convert.h"
#include "kernels/layernorm.h"

namespace frugal {

LayerNorm::LayerNorm(const std::string& prefix, int64_t dim, float eps) : dim_(dim), eps_(eps) {
  weight_ = {prefix + ".weight", Tensor::empty({dim}, DType::F32, MemCategory::Params), {}, true};
  bias_ = {prefix + ".bias", Tensor::zeros({dim}, DType::F32, MemCategory::Params), {}, true};
  weight_.value.fill(1.0f);
}

Tensor LayerNorm::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  check(x.ndim() >= 1 && x.dim(-1) == dim_,
        "layernorm " + weight_.name + ": expected input (..., " + std::to_string(dim_) + "), got " + x.shape().str());
  const int64_t rows = x.numel() / dim_;
  const bool half = x.dtype() != DType::F32;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), MemCategory::Activations);  // in x's type
  Tensor mean = Tensor::empty({rows}, DType::F32, MemCategory::Activations);
  Tensor rstd = Tensor::empty({rows}, DType::F32, MemCategory::Activations);
  saved.tensors = {x};
  saved.stats = {mean, rstd};
  const Tensor w = widen(weight_.value), b = widen(bias_.value);  // (dim) fp32 (workspace copies if half)
  Tensor row_scratch;  // 2 * dim floats per thread: a half row widened, and its output
  if (half) row_scratch = Tensor::empty({per_thread(2 * dim_)}, DType::F32, MemCategory::Workspace);
  if (measuring(x)) return y;
  if (half)
    layernorm_forward_half(x.dtype(), x.u16(), w.f32(), b.f32(), y.u16(), mean.f32(), rstd.f32(), rows, dim_, eps_,
                           row_scratch.f32());
  else
    layernorm_forward(x.f32(), w.f32(), b.f32(), y.f32(), mean.f32(), rstd.f32(), rows, dim_, eps_);
  return y;
}

Tensor LayerNorm::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  const Tensor& x = saved.tensors.at(0);
  const int64_t rows = x.numel() / dim_;
  const bool half = x.dtype() != DType::F32;
  Tensor dx = Tensor::empty(x.shape(), DType::F32, MemCategory::Workspace);
  Tensor partials = Tensor::empty({per_thread(2 * dim_)}, DType::F32, MemCategory::Workspace);
  // Frozen gains still need dw/db computed by the kernel; they go to scratch, not to a gradient.
  Tensor dw = weight_.trainable ? weight_.ensure_grad() : Tensor::zeros({dim_}, DType::F32, MemCategory::Workspace);
  Tensor db = bias_.trainable ? bias_.ensure_grad() : Tensor::zeros({dim_}, DType::F32, MemCategory::Workspace);
  const Tensor w = widen(weight_.value);
  Tensor row_scratch;
  if (half) row_scratch = Tensor::empty({per_thread(2 * dim_)}, DType::F32, MemCategory::Workspace);
  if (measuring(dy)) return dx;
  const float *mean = saved.stats.at(0).f32(), *rstd = saved.stats.at(1).f32();
  if (half && dy.dtype() != DType::F32)  // a half dy (from a layer on the half units), widened row by row
    layernorm_backward_half(x.dtype(), x.u16(), w.f32(), mean, rstd, dy.u16(), dx.f32(), dw.f32(), db.f32(), rows, dim_,
                            partials.f32(), row_scratch.f32());
  else if (half)
    layernorm_backward_half(x.dtype(), x.u16(), w.f32(), mean, rstd, dy.f32(), dx.f32(), dw.f32(), db.f32(), rows, dim_,
                            partials.f32(), row_scratch.f32());
  else
    layernorm_backward(x.f32(), w.f32(), mean, rstd, dy.f32(), dx.f32(), dw.f32(), db.f32(), rows, dim_, partials.f32());
  return dx;
}

void LayerNorm::collect_params(std::vector<Param*>& out) {
  out.push_back(&weight_);
  out.push_back(&bias_);
}

}  // namespace frugal
