#pragma once
// Finite-difference gradient checks for any Layer. The scalar checked is L = sum(w * y) for a
// fixed random w, so dL/dy = w is fed to backward(). Central differences are taken in float on a
// sample of coordinates of the input and of every parameter, and compared as a relative error
// (norm of the difference over the norm of the numerical gradient).
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "models/gpt.h"
#include "nn/layer.h"
#include "nn/linear.h"
#include "tolerances.h"
#include "train/batch.h"
#include "train/executor.h"
#include "train/gradient_snapshot.h"

namespace frugal::testing {

// A tensor of given shape filled with N(0, scale^2) drawn from `seed`.
inline Tensor random_tensor(const Shape& shape, uint64_t seed, float scale = 1.0f,
                            MemCategory category = MemCategory::Activations) {
  Tensor t = Tensor::empty(shape, DType::F32, category);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = scale * rng_normal(seed, 77, static_cast<uint64_t>(i));
  return t;
}

inline void randomize_params(Layer& layer, uint64_t seed, float scale = 0.5f) {
  std::vector<Param*> params;
  layer.collect_params(params);
  for (size_t k = 0; k < params.size(); ++k) {
    float* p = params[k]->value.f32();
    for (int64_t i = 0; i < params[k]->value.numel(); ++i)
      p[i] = scale * rng_normal(seed + k, 99, static_cast<uint64_t>(i));
  }
}

struct GradCheckEntry {
  std::string what;  // "input" or the parameter's name
  double rel_error;
};

inline double weighted_sum(const Tensor& y, const Tensor& w) {
  double s = 0;
  for (int64_t i = 0; i < y.numel(); ++i) s += static_cast<double>(y.f32()[i]) * w.f32()[i];
  return s;
}

// Checks dL/dx (when x is f32) and dL/dp for every parameter of `layer`, plus `shared` parameters
// the layer uses but does not own (a tied weight).
inline std::vector<GradCheckEntry> grad_check(Layer& layer, const Tensor& x, const RunContext& rc,
                                              float eps = 1e-2f, int max_coords = 48,
                                              const std::vector<Param*>& shared = {}) {
  std::vector<GradCheckEntry> out;
  Saved saved;
  Tensor y = layer.forward(x, saved, rc);
  Tensor w = random_tensor(y.shape(), 4242);
  std::vector<Param*> params;
  layer.collect_params(params);
  params.insert(params.end(), shared.begin(), shared.end());
  for (Param* p : params)
    if (p->grad.defined()) p->grad.fill_zero();
  Tensor dx = layer.backward(w, saved, rc);

  auto loss_at = [&]() {
    Saved s;
    return weighted_sum(layer.forward(x, s, rc), w);
  };
  auto check_tensor = [&](const std::string& what, const Tensor& value, const Tensor& grad) {
    std::vector<double> analytic, numeric;
    const int64_t n = value.numel();
    const int64_t stride = std::max<int64_t>(1, n / max_coords);
    for (int64_t i = 0; i < n; i += stride) {
      float* v = value.f32() + i;
      const float orig = *v;
      *v = orig + eps;
      const double plus = loss_at();
      *v = orig - eps;
      const double minus = loss_at();
      *v = orig;
      numeric.push_back((plus - minus) / (2.0 * eps));
      analytic.push_back(grad.f32()[i]);
    }
    out.push_back({what, relative_difference(analytic, numeric)});  // ||analytic - numeric|| / ||numeric||
  };
  if (x.dtype() == DType::F32) check_tensor("input", x, dx);
  for (Param* p : params)
    if (p->trainable) check_tensor(p->name, p->value, p->grad);
  return out;
}

// ---- Two fp32 evaluations of one batch gradient --------------------------------------------------
// A batch gradient is a sum over the batch's samples, g = sum_s g_s. Two fp32 evaluations that add
// the same terms in another order (micro-batches, another GEMM blocking or kernel) differ by at most
// 2 gamma_n sum_s |g_s| elementwise, n the number of terms (Higham; any order, with or without FMA).
// The samples' own gradients come from chains of products whose blocking may differ too (a GEMM of
// fewer rows, OpenBLAS's GEMV for one row): to first order each adds its inner dimension K to n.
// Per tensor, ||a - b|| / ||b|| <= 2 gamma_n ||sum_s |g_s| || / ||g||: the unit times the sum's
// condition number, measured here on the data.

// sum_s |g_s| per parameter: each sample's gradient alone (normalised by the whole batch's count, as
// in g), its magnitudes added in double. `rc` as the runs compared use it (dropout needs the samples'
// offsets: each sample runs with its own).
inline GradientSnapshot per_sample_magnitudes(const ModelMaker& make, const Batch& batch, RunContext rc = {}) {
  const double normalizer = static_cast<double>(count_items(*make(), batch));
  GradientSnapshot sum;
  for (int64_t s = 0; s < batch.size(); ++s) {
    const std::unique_ptr<Model> model = make();
    rc.sample_offset = static_cast<uint64_t>(s);
    forward_backward(*model, batch.slice(s, s + 1), normalizer, rc);
    for (const auto& [name, g] : snapshot_gradients(*model)) {
      std::vector<double>& acc = sum[name];
      acc.resize(g.size(), 0.0);
      for (size_t i = 0; i < g.size(); ++i) acc[i] += std::fabs(g[i]);
    }
  }
  return sum;
}

// The tensor nearest its bound: ||a - b|| / ||b|| against `relative` ||magnitude|| / ||b||, where
// each element of a is within `relative` times its magnitude of b's.
struct SumOrderCheck {
  double difference = 0, bound = 0;
  std::string name;
};
inline SumOrderCheck against_magnitude_bound(const GradientSnapshot& a, const GradientSnapshot& b,
                                             const GradientSnapshot& magnitude, double relative) {
  SumOrderCheck worst{0, 1, ""};
  for (const auto& [name, ref] : b) {
    double m = 0, r = 0;
    for (size_t i = 0; i < ref.size(); ++i) m += magnitude.at(name)[i] * magnitude.at(name)[i], r += ref[i] * ref[i];
    const double difference = relative_difference(a.at(name), ref);
    const double bound = relative * std::sqrt(m) / std::max(std::sqrt(r), 1e-300);
    if (difference / bound >= worst.difference / worst.bound) worst = {difference, bound, name};
  }
  return worst;
}
// Two summation orders of n terms: relative = 2 gamma_n.
inline SumOrderCheck against_sum_order_bound(const GradientSnapshot& a, const GradientSnapshot& b,
                                             const GradientSnapshot& magnitude, double n) {
  return against_magnitude_bound(a, b, magnitude, 2 * gamma_n(n));
}

// n for a GPT's forward (tied head): the reductions whose order another blocking may change, on the
// longest path, K = E (c_attn, attn.c_proj, c_fc) and 4E (mlp.c_proj) in each block, E in the head.
// An adapter of rank r on every adaptable layer adds r + 2 (its products and scale) to each of those
// 4 products. (Layer norms, attention and the loss work per row or per head, the same operations
// whatever the micro-batch.)
inline double gpt_forward_terms(const GptConfig& c, double lora_rank = 0) {
  const double E = static_cast<double>(c.n_embd), L = static_cast<double>(c.n_layer);
  const double adapter = lora_rank > 0 ? 4 * (lora_rank + 2) : 0;
  return L * (7 * E + adapter) + E;
}

// n for a GPT's gradient: the forward's, then the backward's dx products, K = 3E, E, 4E, E per block
// (and the adapters') and V in the head, then the `rows` tokens summed into a weight gradient.
inline double gpt_reduction_terms(const GptConfig& c, double rows, double lora_rank = 0) {
  const double E = static_cast<double>(c.n_embd), L = static_cast<double>(c.n_layer);
  const double adapter = lora_rank > 0 ? 4 * (lora_rank + 2) : 0;
  return gpt_forward_terms(c, lora_rank) + L * (9 * E + adapter) + static_cast<double>(c.vocab_size) + rows;
}


// The half roundings on the longest path of a GPT gradient under --precision fp16/bf16
// (nn/half_storage.h: every layer's output, saved tensors and input gradient are stored in the half
// type; products take half inputs and add in fp32). Forward, per block: the outputs of ln_1, c_attn,
// attention (and its saved probabilities), attn.c_proj, the residual, ln_2, c_fc, GELU, mlp.c_proj and
// the residual (11) and the compute copies of its 6 weight and gain tensors; around the blocks the
// embedding's tables and sum, ln_f's output and gain, the head's dlogits. Backward, per block the 9
// layers' input gradients and the residual's sum (10), and ln_f's. With LoRA each adapted layer adds
// 4: A's and B's copies, h = x A^T stored half, g = dy B rounded. (The fused attention stores fewer.)
inline double gpt_half_roundings(const GptConfig& c, double adapted_per_block = 0) {
  return 6 + static_cast<double>(c.n_layer) * (27 + 4 * adapted_per_block);
}

// How far a BatchNorm's running statistics after micro-batches (--bn-stats batch) may be from the
// whole batch's, relative (the norm of the difference over the norm of `full`, the C means then the
// C variances). The moments are taken in double from the same floats (merged by Chan's rule: about
// 2^-50); what may differ is the normalised input x = W in + b, the first Linear's GEMM over fewer
// rows: |dx_rc| <= 2 gamma_{K+1} (|W||in| + |b|)_rc. The momentum 0.1 carries it into the statistics,
// to first order |d mean_c| <= 0.1 mean_r |dx_rc| and |d var_c| <= 0.1 (2 / (R - 1)) sum_r
// |x_rc - mean_c| |dx_rc|; then each statistic rounds to float (2 u between two runs).
inline double running_statistics_bound(Linear& first, const Tensor& inputs, const std::vector<float>& full) {
  const float* w = first.weight().value.f32();  // (C, K)
  const float* b = first.bias()->value.f32();
  const int64_t R = inputs.dim(0), K = inputs.dim(1), C = first.weight().value.dim(0);
  double err_sq = 0, norm_sq = 0;
  for (int64_t c = 0; c < C; ++c) {
    std::vector<double> x(R), dx(R);
    double mean = 0, mean_dx = 0;
    for (int64_t r = 0; r < R; ++r) {
      double v = b[c], m = std::fabs(b[c]);
      for (int64_t k = 0; k < K; ++k) {
        const double in = inputs.f32()[r * K + k];
        v += w[c * K + k] * in;
        m += std::fabs(w[c * K + k] * in);
      }
      x[r] = v, dx[r] = 2 * gamma_n(static_cast<double>(K + 1)) * m;
      mean += v / static_cast<double>(R), mean_dx += dx[r] / static_cast<double>(R);
    }
    double var_dx = 0;
    for (int64_t r = 0; r < R; ++r) var_dx += 2.0 / static_cast<double>(R - 1) * std::fabs(x[r] - mean) * dx[r];
    const double d_mean = 0.1 * mean_dx + 2 * kFp32Unit * std::fabs(full[c]);
    const double d_var = 0.1 * var_dx + 2 * kFp32Unit * std::fabs(full[C + c]);
    err_sq += d_mean * d_mean + d_var * d_var;
    norm_sq += static_cast<double>(full[c]) * full[c] + static_cast<double>(full[C + c]) * full[C + c];
  }
  return std::sqrt(err_sq / norm_sq);
}

}  // namespace frugal::testing
