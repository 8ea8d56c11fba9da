#include "train/adamw8bit.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/error.h"
#include "kernels/quantize8.h"

namespace frugal {

void AdamW8bit::ensure_state(const std::vector<Param*>& params) {
  if (!state_.empty()) return;
  for (Param* p : params) {
    State s;
    if (p->trainable) {
      const int64_t n = p->value.numel(), blocks = (n + block_ - 1) / block_;
      // Zero bytes are 0 in both codes and zero absmax scales them to 0: AdamW's zero state.
      s.m = Tensor::zeros({n}, DType::U8, MemCategory::Optimizer);
      s.v = Tensor::zeros({n}, DType::U8, MemCategory::Optimizer);
      s.m_absmax = Tensor::zeros({blocks}, DType::F32, MemCategory::Optimizer);
      s.v_absmax = Tensor::zeros({blocks}, DType::F32, MemCategory::Optimizer);
    }
    state_.push_back(s);
  }
}

std::vector<std::pair<std::string, Tensor>> AdamW8bit::state_tensors(const std::vector<Param*>& params) {
  ensure_state(params);
  check(state_.size() == params.size(), "optimizer: parameter list changed between steps");
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t k = 0; k < params.size(); ++k) {
    const State& s = state_[k];
    if (!s.m.defined()) continue;
    out.emplace_back("adamw8bit.m/" + params[k]->name, s.m);
    out.emplace_back("adamw8bit.m_absmax/" + params[k]->name, s.m_absmax);
    out.emplace_back("adamw8bit.v/" + params[k]->name, s.v);
    out.emplace_back("adamw8bit.v_absmax/" + params[k]->name, s.v_absmax);
  }
  return out;
}

void AdamW8bit::begin_step(const std::vector<Param*>& params) {
  ensure_state(params);
  check(state_.size() == params.size(), "optimizer: parameter list changed between steps");
  std::tie(bias1_, bias2_) = options_.bias_corrections(++t_);
}

// One block at a time (its m and v in fp32 on the stack): dequantise, AdamW's update, re-quantise
// with the block's new absmax.
void AdamW8bit::update_param(const std::vector<Param*>& params, size_t k, float lr) {
  Param& p = *params[k];
  State& s = state_[k];
  const float bias1 = bias1_, bias2 = bias2_;
  const DynamicCode8 &mc = signed_code8(), &vc = unsigned_code8();
  const float b1 = options_.beta1, b2 = options_.beta2, eps = options_.eps;
  const float decay = p.value.ndim() >= 2 ? options_.weight_decay : 0.0f;
  float* w = p.value.f32();
  const float* g = p.grad.f32();
  uint8_t *mq = s.m.u8(), *vq = s.v.u8();
  float *m_absmax = s.m_absmax.f32(), *v_absmax = s.v_absmax.f32();
  const int64_t n = p.value.numel(), block = block_, blocks = (n + block - 1) / block;
#pragma omp parallel
  {
    // One block's updated m and v in fp32 (a few KiB per thread, outside the ledger like a stack frame).
    std::vector<float> m(static_cast<size_t>(block)), v(static_cast<size_t>(block));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t begin = b * block, count = std::min(block, n - begin);
      const float m_scale = m_absmax[b], v_scale = v_absmax[b];
      // Dequantise (table gathers), then the update, then quantise again: all in vector lanes.
      mc.dequantize_scaled(mq + begin, m_scale, count, m.data());
      vc.dequantize_scaled(vq + begin, v_scale, count, v.data());
      float m_top = 0.0f, v_top = 0.0f;
      float *mj = m.data(), *vj = v.data(), *wj = w + begin;
      const float* gj = g + begin;
#pragma omp simd reduction(max : m_top, v_top)
      for (int64_t j = 0; j < count; ++j) {
        const float mi = b1 * mj[j] + (1.0f - b1) * gj[j];
        const float vi = b2 * vj[j] + (1.0f - b2) * gj[j] * gj[j];
        wj[j] -= lr * ((mi / bias1) / (std::sqrt(vi / bias2) + eps) + decay * wj[j]);
        mj[j] = mi, vj[j] = vi;
        m_top = std::max(m_top, std::fabs(mi)), v_top = std::max(v_top, vi);
      }
      m_absmax[b] = m_top, v_absmax[b] = v_top;
      const float m_inv = m_top > 0.0f ? 1.0f / m_top : 0.0f, v_inv = v_top > 0.0f ? 1.0f / v_top : 0.0f;
      mc.quantize_scaled(m.data(), m_inv, count, mq + begin);
      vc.quantize_scaled(v.data(), v_inv, count, vq + begin);
    }
  }
}

}  // namespace frugal
