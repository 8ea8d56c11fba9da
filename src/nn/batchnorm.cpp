#include "nn/batchnorm.h"

#include <cmath>
#include <utility>

#include "core/error.h"
#include "kernels/convert.h"

namespace frugal {

namespace {

Param make_param(const std::string& name, int64_t channels, float value, bool trainable) {
  Param p;
  p.name = name;
  p.value = Tensor::empty({channels}, DType::F32, MemCategory::Params);
  p.trainable = trainable;
  p.value.fill(value);
  return p;
}

// Mean and sum of squared deviations of channel c of x (N, C, S): two passes in double, the mean
// first, then deviations from it (no cancellation).
std::pair<double, double> channel_moments(const float* x, int64_t N, int64_t C, int64_t S, int64_t c) {
  double sum = 0.0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) sum += x[(n * C + c) * S + s];
  const double mu = sum / static_cast<double>(N * S);
  double sq = 0.0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) {
      const double d = x[(n * C + c) * S + s] - mu;
      sq += d * d;
    }
  return {mu, sq};
}

}  // namespace

BatchNorm::BatchNorm(std::string prefix, int64_t num_features, double eps, double momentum)
    : prefix_(std::move(prefix)), channels_(num_features), eps_(eps), momentum_(momentum) {
  check(num_features > 0, "batchnorm " + prefix_ + ": the number of features must be positive");
  weight_ = make_param(prefix_ + ".weight", channels_, 1.0f, true);
  bias_ = make_param(prefix_ + ".bias", channels_, 0.0f, true);
  running_mean_ = make_param(prefix_ + ".running_mean", channels_, 0.0f, false);
  running_var_ = make_param(prefix_ + ".running_var", channels_, 1.0f, false);
}

void BatchNorm::collect_params(std::vector<Param*>& out) {
  out.push_back(&weight_);
  out.push_back(&bias_);
}

void BatchNorm::collect_buffers(std::vector<Param*>& out) {
  out.push_back(&running_mean_);
  out.push_back(&running_var_);
}

void BatchNorm::check_input(const Tensor& x, const std::string& what) const {
  const std::string me = "batchnorm " + prefix_ + ": ";
  check(x.dtype() == DType::F32, me + "expected an f32 " + what + ", got " + dtype_name(x.dtype()));
  check(x.ndim() >= 2 && x.dim(1) == channels_ && x.numel() > 0,
        me + "expected a non-empty " + what + " [N, " + std::to_string(channels_) + ", ...], got " + x.shape().str());
}

Tensor BatchNorm::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  check_input(x, "input");  // x: (N, C, S) with S = H*W, L or 1
  const int64_t N = x.dim(0), C = channels_, S = x.numel() / (N * C), M = N * S;
  const bool batch_stats = rc.training;
  check(!batch_stats || M > 1, "batchnorm " + prefix_ + ": training needs more than one value per channel, got input " +
                                   x.shape().str());

  Tensor y = Tensor::empty(x.shape(), DType::F32, MemCategory::Activations);  // (N, C, S)
  Tensor mean = Tensor::empty({C}, DType::F32, MemCategory::Activations);     // (C)
  Tensor rstd = Tensor::empty({C}, DType::F32, MemCategory::Activations);     // (C)
  saved.tensors = {x};
  saved.stats = {mean, rstd};
  const Tensor gamma_t = widen(weight_.value), beta_t = widen(bias_.value);  // (C) fp32
  if (measuring(x)) return y;

  const float* xp = x.f32();
  float* yp = y.f32();
  float* mp = mean.f32();
  float* rp = rstd.f32();
  const float *gamma = gamma_t.f32(), *beta = beta_t.f32();
  float* run_mean = running_mean_.value.f32();
  float* run_var = running_var_.value.f32();
  const bool update_running = batch_stats && !rc.recompute;
  const bool defer = update_running && rc.defer_running_stats;
  if (defer && pending_count_ == 0) {
    pending_mean_.assign(C, 0.0);
    pending_m2_.assign(C, 0.0);
  }
  const double merged_before = static_cast<double>(pending_count_);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    if (batch_stats) {
      const auto [mu, sq] = channel_moments(xp, N, C, S, c);
      const double var = sq / static_cast<double>(M);
      mp[c] = static_cast<float>(mu);
      rp[c] = static_cast<float>(1.0 / std::sqrt(var + eps_));
      if (defer) {
        const double total = merged_before + static_cast<double>(M);
        const double delta = mu - pending_mean_[c];
        pending_mean_[c] += delta * static_cast<double>(M) / total;
        pending_m2_[c] += sq + delta * delta * merged_before * static_cast<double>(M) / total;
      } else if (update_running) {
        const double unbiased = var * static_cast<double>(M) / static_cast<double>(M - 1);
        run_mean[c] = static_cast<float>((1.0 - momentum_) * run_mean[c] + momentum_ * mu);
        run_var[c] = static_cast<float>((1.0 - momentum_) * run_var[c] + momentum_ * unbiased);
      }
    } else {
      mp[c] = run_mean[c];
      rp[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(run_var[c]) + eps_));
    }
    // y = (x - mean) * rstd * gamma + beta, folded into one multiply-add per element.
    const float scale = gamma[c] * rp[c];
    const float shift = beta[c] - mp[c] * scale;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) yp[(n * C + c) * S + s] = xp[(n * C + c) * S + s] * scale + shift;
  }
  if (defer) pending_count_ += M;
  return y;
}

void BatchNorm::apply_deferred_statistics() {
  if (pending_count_ == 0 || !running_mean_.value.has_data()) return;
  check(pending_count_ > 1, "batchnorm " + prefix_ + ": one value per channel in the whole batch");
  float* run_mean = running_mean_.value.f32();
  float* run_var = running_var_.value.f32();
  for (int64_t c = 0; c < channels_; ++c) {
    const double unbiased = pending_m2_[c] / static_cast<double>(pending_count_ - 1);
    run_mean[c] = static_cast<float>((1.0 - momentum_) * run_mean[c] + momentum_ * pending_mean_[c]);
    run_var[c] = static_cast<float>((1.0 - momentum_) * run_var[c] + momentum_ * unbiased);
  }
  pending_count_ = 0;
}

Tensor BatchNorm::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  check(saved.tensors.size() == 1 && saved.stats.size() == 2, "batchnorm " + prefix_ + ": backward without a saved forward");
  const Tensor& x = saved.tensors[0];  // (N, C, S)
  check_input(dy, "gradient");
  check(dy.shape() == x.shape(),
        "batchnorm " + prefix_ + ": gradient " + dy.shape().str() + " does not match input " + x.shape().str());
  const int64_t N = x.dim(0), C = channels_, S = x.numel() / (N * C), M = N * S;

  Tensor dx = Tensor::empty(x.shape(), DType::F32, MemCategory::Workspace);  // (N, C, S)
  const bool param_grads = weight_.trainable;
  const bool bias_grads = bias_.trainable;
  if (param_grads) weight_.ensure_grad();
  if (bias_grads) bias_.ensure_grad();
  const Tensor gamma_t = widen(weight_.value);  // (C) fp32
  if (measuring(dy) || measuring(x)) return dx;

  const float* xp = x.f32();
  const float* dyp = dy.f32();
  float* dxp = dx.f32();
  const float* mp = saved.stats.at(0).f32();
  const float* rp = saved.stats.at(1).f32();
  const float* gamma = gamma_t.f32();
  float* dgamma = param_grads ? weight_.grad.f32() : nullptr;
  float* dbeta = bias_grads ? bias_.grad.f32() : nullptr;
  const bool batch_stats = rc.training;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const float mu = mp[c], r = rp[c];
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = (n * C + c) * S + s;
        sum_dy += dyp[i];
        sum_dy_xhat += static_cast<double>(dyp[i]) * ((xp[i] - mu) * r);
      }
    if (dgamma) dgamma[c] += static_cast<float>(sum_dy_xhat);
    if (dbeta) dbeta[c] += static_cast<float>(sum_dy);
    const float k = gamma[c] * r;
    if (batch_stats) {
      // The batch statistics depend on x too:
      // dx = gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
      const float mean_dy = static_cast<float>(sum_dy / static_cast<double>(M));
      const float mean_dy_xhat = static_cast<float>(sum_dy_xhat / static_cast<double>(M));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t s = 0; s < S; ++s) {
          const int64_t i = (n * C + c) * S + s;
          dxp[i] = k * (dyp[i] - mean_dy - (xp[i] - mu) * r * mean_dy_xhat);
        }
    } else {  // running statistics are constants
      for (int64_t n = 0; n < N; ++n)
        for (int64_t s = 0; s < S; ++s) {
          const int64_t i = (n * C + c) * S + s;
          dxp[i] = k * dyp[i];
        }
    }
  }
  return dx;
}

}  // namespace frugal
