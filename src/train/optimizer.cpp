#include "train/optimizer.h"

#include <cmath>
#include <tuple>

#include "core/error.h"
#include "kernels/elementwise.h"
#include "train/adamw8bit.h"

namespace frugal {

void AdamW::ensure_state(const std::vector<Param*>& params) {
  if (!m_.empty()) return;
  for (Param* p : params) {
    m_.push_back(p->trainable ? Tensor::zeros(p->value.shape(), DType::F32, MemCategory::Optimizer) : Tensor());
    v_.push_back(p->trainable ? Tensor::zeros(p->value.shape(), DType::F32, MemCategory::Optimizer) : Tensor());
  }
}

std::vector<std::pair<std::string, Tensor>> AdamW::state_tensors(const std::vector<Param*>& params) {
  ensure_state(params);
  check(m_.size() == params.size(), "optimizer: parameter list changed between steps");
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t k = 0; k < params.size(); ++k) {
    if (!m_[k].defined()) continue;
    out.emplace_back("adamw.m/" + params[k]->name, m_[k]);
    out.emplace_back("adamw.v/" + params[k]->name, v_[k]);
  }
  return out;
}

void Optimizer::step(const std::vector<Param*>& params, float lr) {
  begin_step(params);
  for (size_t k = 0; k < params.size(); ++k) {
    const Param* p = params[k];
    if (p->trainable && p->grad.defined() && p->value.has_data()) update_param(params, k, lr);
  }
}

std::pair<float, float> AdamWOptions::bias_corrections(int64_t t) const {
  return {1.0f - static_cast<float>(std::pow(beta1, static_cast<double>(t))),
          1.0f - static_cast<float>(std::pow(beta2, static_cast<double>(t)))};
}

void AdamW::begin_step(const std::vector<Param*>& params) {
  ensure_state(params);
  check(m_.size() == params.size(), "optimizer: parameter list changed between steps");
  std::tie(bias1_, bias2_) = options_.bias_corrections(++t_);
}

void AdamW::update_param(const std::vector<Param*>& params, size_t k, float lr) {
  Param* p = params[k];
  const float b1 = options_.beta1, b2 = options_.beta2, eps = options_.eps, bias1 = bias1_, bias2 = bias2_;
  const float decay = p->value.ndim() >= 2 ? options_.weight_decay : 0.0f;
  float* w = p->value.f32();
  const float* g = p->grad.f32();
  float* m = m_[k].f32();
  float* v = v_[k].f32();
  const int64_t n = p->value.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    const float mhat = m[i] / bias1;
    const float vhat = v[i] / bias2;
    w[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + decay * w[i]);
  }
}

void Sgd::ensure_state(const std::vector<Param*>& params) {
  if (buf_.empty() && momentum_ != 0.0f)
    for (Param* p : params)
      buf_.push_back(p->trainable ? Tensor::zeros(p->value.shape(), DType::F32, MemCategory::Optimizer) : Tensor());
}

std::vector<std::pair<std::string, Tensor>> Sgd::state_tensors(const std::vector<Param*>& params) {
  ensure_state(params);
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t k = 0; k < buf_.size() && k < params.size(); ++k)
    if (buf_[k].defined()) out.emplace_back("sgd.momentum/" + params[k]->name, buf_[k]);
  return out;
}

void Sgd::begin_step(const std::vector<Param*>& params) { ensure_state(params); }

void Sgd::update_param(const std::vector<Param*>& params, size_t k, float lr) {
  Param* p = params[k];
  const float decay = p->value.ndim() >= 2 ? weight_decay_ : 0.0f;
  float* w = p->value.f32();
  const float* g = p->grad.f32();
  float* b = momentum_ != 0.0f ? buf_[k].f32() : nullptr;
  const int64_t n = p->value.numel();
  const float mu = momentum_;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float d = g[i] + decay * w[i];
    if (b) {
      b[i] = mu * b[i] + d;
      d = b[i];
    }
    w[i] -= lr * d;
  }
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, float weight_decay, int64_t block) {
  if (name == "adamw") {
    AdamWOptions o;
    o.weight_decay = weight_decay;
    return std::make_unique<AdamW>(o);
  }
  if (name == "adamw8bit") {
    AdamWOptions o;
    o.weight_decay = weight_decay;
    return std::make_unique<AdamW8bit>(o, block);
  }
  if (name == "sgd") return std::make_unique<Sgd>(0.9f, weight_decay);
  throw Error("unknown optimizer '" + name + "' (expected adamw, adamw8bit or sgd)");
}

double clip_grad_norm(const std::vector<Param*>& params, double max_norm, Communicator* across) {
  double sum = 0.0;
  for (Param* p : params) {
    if (!p->trainable || !p->grad.has_data()) continue;
    const float* g = p->grad.f32();
    const int64_t n = p->grad.numel();
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(g[i]) * g[i];
    sum += s;
  }
  if (across) across->allreduce_sum(&sum, 1);
  const double norm = std::sqrt(sum);
  if (max_norm > 0 && norm > max_norm) {
    const float scale = static_cast<float>(max_norm / (norm + 1e-6));
    for (Param* p : params)
      if (p->trainable && p->grad.has_data()) scale_inplace(p->grad.f32(), scale, p->grad.numel());
  }
  return norm;
}

void zero_grads(const std::vector<Param*>& params) {
  for (Param* p : params)
    if (p->grad.defined()) p->grad.fill_zero();
}

float scheduled_lr(float lr, int64_t step, int64_t total_steps, int64_t warmup, const std::string& schedule) {
  if (warmup > 0 && step < warmup) return lr * static_cast<float>(step + 1) / static_cast<float>(warmup);
  if (schedule == "constant") return lr;
  check(schedule == "cosine", "unknown learning-rate schedule '" + schedule + "' (expected cosine or constant)");
  const int64_t decay_steps = std::max<int64_t>(1, total_steps - warmup);
  const double progress = std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(decay_steps));
  const double min_lr = 0.1 * lr;
  return static_cast<float>(min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(3.141592653589793 * progress)));
}

}  // namespace frugal
