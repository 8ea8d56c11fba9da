#include "nn/lora.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "core/tensor_init.h"
#include "core/threading.h"
#include "kernels/convert.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/lora.h"
#include "nn/half_storage.h"

namespace frugal {

LoraAdapter::LoraAdapter(const std::string& key_prefix, int64_t in, int64_t out, const LoraConfig& config,
                         uint64_t seed)
    : config_(config), in_(in), out_(out), stream_(name_stream(key_prefix)) {
  check(config.rank >= 1 && config.rank <= std::min(in, out),
        "LoRA rank " + std::to_string(config.rank) + " for " + key_prefix + " must be in 1..min(in, out) = " +
            std::to_string(std::min(in, out)));
  check(config.dropout >= 0 && config.dropout < 1, "--lora-dropout must be in [0, 1)");
  check(config.alpha > 0, "--lora-alpha must be positive");
  a_ = {key_prefix + ".lora_A.weight", Tensor::empty({config.rank, in}, DType::F32, MemCategory::Params), {}, true};
  b_ = {key_prefix + ".lora_B.weight", Tensor::zeros({out, config.rank}, DType::F32, MemCategory::Params), {}, true};
  init_uniform(a_.value, seed, name_stream(a_.name), 1.0f / std::sqrt(static_cast<float>(in)));
}

bool LoraAdapter::kept(const RunContext& rc, int64_t per_sample, int64_t i, float keep) const {
  // Keyed by the element's place in the whole optimizer batch, not in the micro-batch: the same
  // mask however the batch is split (and whenever it is recomputed).
  const uint64_t element = rc.sample_offset * static_cast<uint64_t>(per_sample) + static_cast<uint64_t>(i);
  return rng_uniform(rc.seed, rng_stream(stream_, rc.step, rc.block_index), element) < keep;
}

Tensor LoraAdapter::dropped(const Tensor& x, const RunContext& rc, bool last_use) const {
  if (config_.dropout == 0 || !rc.training) return x;
  // x's last use with nothing else holding it (the layer releases it next): masked where it lies,
  // so backward holds no second rows x in copy.
  const bool in_place = last_use && x.buffer().use_count() == 1;
  Tensor xd = in_place ? x : Tensor::empty(x.shape(), DType::F32, MemCategory::Workspace);
  if (measuring(x)) return xd;
  const float keep = static_cast<float>(1.0 - config_.dropout), inv = 1.0f / keep;
  const float* src = x.f32();
  float* dst = xd.f32();
  const int64_t per_sample = x.numel() / x.dim(0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < x.numel(); ++i) dst[i] = kept(rc, per_sample, i, keep) ? src[i] * inv : 0.0f;
  return xd;
}

void LoraAdapter::forward(const Tensor& x, const Tensor& y, Saved& saved, const RunContext& rc,
                          bool folded) const {
  if (folded) return;  // y already has the adapter's part; the backward pass computes x A^T itself
  const int64_t rows = x.numel() / in_, r = config_.rank;
  Tensor h = Tensor::empty({rows, r}, DType::F32, MemCategory::Activations);  // (rows, r) = x_d A^T
  saved.tensors.push_back(h);
  const Tensor xd = dropped(x, rc, /*last_use=*/false);
  const Tensor a = widen(a_.value), b = widen(b_.value);  // (fp32 unless mixed precision)
  if (measuring(x)) return;
  lora_down(rows, in_, r, xd.f32(), a.f32(), h.f32());
  gemm(false, true, rows, out_, r, static_cast<float>(config_.scale()), h.f32(), r, b.f32(), r, 1.0f, y.f32(),
       out_);
}

Tensor LoraAdapter::backward_weights(const Tensor& x, const Tensor& dy, Saved& saved, const RunContext& rc,
                                     bool folded) {
  const int64_t rows = x.numel() / in_, r = config_.rank;
  const Tensor h = folded ? Tensor() : saved.tensors.back();  // (rows, r), saved unless folded
  Tensor g;  // (rows, r) = dy B, for the unfolded path's dx
  if (!folded && rc.input_grad) g = Tensor::empty({rows, r}, DType::F32, MemCategory::Workspace);
  const Tensor xd = dropped(x, rc, /*last_use=*/true);  // x is released after this pass
  const Tensor& da = a_.ensure_grad();
  const Tensor& db = b_.ensure_grad();
  // Each thread's partial dB^T (r, out), dA (r, in) and a chunk's h and g (kernels/lora.h).
  Tensor partial = Tensor::empty({per_thread(lora_backward_scratch(in_, out_, r))}, DType::F32, MemCategory::Workspace);
  const Tensor a = widen(a_.value), b = widen(b_.value);
  if (measuring(dy)) return g;
  LoraBackward pass;
  pass.rows = rows, pass.in = in_, pass.out = out_, pass.r = r;
  pass.scale = static_cast<float>(config_.scale());
  pass.dy = dy.f32(), pass.x = xd.f32(), pass.a = a.f32(), pass.b = b.f32();
  pass.h = h.defined() ? h.f32() : nullptr;
  pass.g = g.defined() ? g.f32() : nullptr;
  pass.da = da.f32(), pass.db = db.f32(), pass.partial = partial.f32();
  lora_backward_pass(pass);
  return g;
}

void LoraAdapter::input_gradient(const Tensor& g, const Tensor& dx, const RunContext& rc) const {
  const int64_t rows = dx.numel() / in_, r = config_.rank;
  const Tensor a = widen(a_.value);  // (r, in) fp32
  if (measuring(dx)) return;
  gemm(false, false, rows, in_, r, static_cast<float>(config_.scale()), g.f32(), r, a.f32(), in_, 0.0f, dx.f32(),
       in_);  // dx = s g A
  if (config_.dropout == 0 || !rc.training) return;
  // The mask again (the same counter-based draws), as x_d / x: kept elements scale by 1/keep.
  const float keep = static_cast<float>(1.0 - config_.dropout), inv = 1.0f / keep;
  const int64_t per_sample = dx.numel() / dx.dim(0);
  float* out = dx.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < dx.numel(); ++i) out[i] = kept(rc, per_sample, i, keep) ? out[i] * inv : 0.0f;
}

void LoraAdapter::forward_half(const Tensor& x, const Tensor& y, Saved& saved) const {
  const DType half = x.dtype();
  const int64_t rows = x.numel() / in_, r = config_.rank;
  Tensor h = Tensor::empty({rows, r}, DType::F32, MemCategory::Activations);  // (rows, r) = x A^T
  saved.tensors.push_back(h);
  const Tensor b = widen(b_.value);  // (out, r) fp32: h stays fp32 until y has its part
  if (measuring(x)) return;
  check(a_.value.dtype() == half, "LoRA " + a_.name + ": A is not in the input's half type");
  gemm_half(half, false, true, rows, r, in_, 1.0f, x.u16(), in_, a_.value.u16(), in_, 0.0f, h.f32(), r);
  gemm(false, true, rows, out_, r, static_cast<float>(config_.scale()), h.f32(), r, b.f32(), r, 1.0f, y.f32(), out_);
}

Tensor LoraAdapter::backward_weights_half(const Tensor& x, const Tensor& dy_half, Saved& saved) {
  const DType half = x.dtype();
  const int64_t rows = x.numel() / in_, r = config_.rank;
  const Tensor& h = saved.tensors.back();  // (rows, r) in the half type (stored as an activation)
  Tensor g = Tensor::empty({rows, r}, DType::F32, MemCategory::Workspace);  // dy B
  const Tensor g_half = Tensor::empty({rows, r}, half, MemCategory::Workspace);
  const Tensor& da = a_.ensure_grad();
  const Tensor& db = b_.ensure_grad();
  if (measuring(dy_half)) return g;
  check(h.dtype() == half && b_.value.dtype() == half, "LoRA " + a_.name + ": h and B are not in the input's half type");
  const float scale = static_cast<float>(config_.scale());
  gemm_half(half, false, false, rows, r, out_, 1.0f, dy_half.u16(), out_, b_.value.u16(), r, 0.0f, g.f32(), r);  // g = dy B
  gemm_half(half, true, false, out_, r, rows, scale, dy_half.u16(), out_, h.u16(), r, 1.0f, db.f32(), r);       // dB += s dy^T h
  round_into(g, g_half);
  gemm_half(half, true, false, r, in_, rows, scale, g_half.u16(), r, x.u16(), in_, 1.0f, da.f32(), in_);        // dA += s g^T x
  return g;
}

void LoraAdapter::merge_into(const Tensor& weight, bool in_out_layout, float sign) const {
  lora_fold(in_out_layout, in_, out_, config_.rank, sign * static_cast<float>(config_.scale()), weight.f32(),
            widen(a_.value).f32(), widen(b_.value).f32(), weight.f32());
}

void LoraAdapter::fold_into(const Tensor& weight, bool in_out_layout, const Tensor& folded) const {
  const Tensor a = widen(a_.value), b = widen(b_.value);  // allocated in measure mode too
  if (!folded.has_data()) return;
  lora_fold(in_out_layout, in_, out_, config_.rank, static_cast<float>(config_.scale()), weight.f32(), a.f32(), b.f32(),
            folded.f32());
}

}  // namespace frugal
