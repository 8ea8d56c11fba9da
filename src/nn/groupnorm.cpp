#include "nn/groupnorm.h"

#include "core/error.h"
#include "kernels/convert.h"
#include "kernels/groupnorm.h"

namespace frugal {

GroupNorm::GroupNorm(const std::string& prefix, int64_t groups, int64_t channels, float eps)
    : groups_(groups), channels_(channels), eps_(eps) {
  check(groups > 0 && channels % groups == 0, "groupnorm " + prefix + ": " + std::to_string(channels) +
                                                  " channels do not split into " + std::to_string(groups) + " groups");
  weight_ = {prefix + ".weight", Tensor::empty({channels}, DType::F32, MemCategory::Params), {}, true};
  bias_ = {prefix + ".bias", Tensor::zeros({channels}, DType::F32, MemCategory::Params), {}, true};
  weight_.value.fill(1.0f);
}

Tensor GroupNorm::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  check(x.ndim() >= 2 && x.dim(1) == channels_, "groupnorm " + weight_.name + ": expected input [N, " +
                                                    std::to_string(channels_) + ", ...], got " + x.shape().str());
  const int64_t N = x.dim(0);
  Tensor y = Tensor::empty(x.shape(), DType::F32, MemCategory::Activations);        // (N, C, S)
  Tensor mean = Tensor::empty({N, groups_}, DType::F32, MemCategory::Activations);  // (N, G)
  Tensor rstd = Tensor::empty({N, groups_}, DType::F32, MemCategory::Activations);  // (N, G)
  saved.tensors = {x};
  saved.stats = {mean, rstd};
  const Tensor w = widen(weight_.value), b = widen(bias_.value);  // (C) fp32 (workspace copies if half)
  if (measuring(x)) return y;
  groupnorm_forward(x.f32(), w.f32(), b.f32(), y.f32(), mean.f32(), rstd.f32(), N, channels_, x.numel() / (N * channels_),
                    groups_, eps_);
  return y;
}

Tensor GroupNorm::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  const Tensor& x = saved.tensors.at(0);
  const int64_t N = x.dim(0);
  Tensor dx = Tensor::empty(x.shape(), DType::F32, MemCategory::Workspace);
  const bool train_affine = weight_.trainable && bias_.trainable;
  if (train_affine) {
    weight_.ensure_grad();
    bias_.ensure_grad();
  }
  const Tensor w = widen(weight_.value);
  if (measuring(dy)) return dx;
  groupnorm_backward(x.f32(), w.f32(), saved.stats.at(0).f32(), saved.stats.at(1).f32(), dy.f32(), dx.f32(),
                     train_affine ? weight_.grad.f32() : nullptr, train_affine ? bias_.grad.f32() : nullptr, N,
                     channels_, x.numel() / (N * channels_), groups_);
  return dx;
}

void GroupNorm::collect_params(std::vector<Param*>& out) {
  out.push_back(&weight_);
  out.push_back(&bias_);
}

}  // namespace frugal
