#include "kernels/lm_head_loss.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/convert.h"
#include "kernels/cross_entropy.h"
#include "kernels/gemm.h"
#include "kernels/quantized_matrix.h"

namespace frugal {

namespace {

// Softmax cross-entropy of the n rows of `logits` (n, V), in place: with `grad`, each row becomes
// its gradient (softmax - onehot) * grad_scale, rounded through grad_type, and also rounded into
// `half_out` (n, V) when that is given; ignored rows become 0. Returns the rows' summed loss.
double softmax_xent_rows(float* logits, const int32_t* targets, int64_t n, int64_t V, float grad_scale, bool grad,
                         DType grad_type, uint16_t* half_out) {
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (int64_t r = 0; r < n; ++r) {
    float* row = logits + r * V;
    const int32_t target = targets[r];
    if (target == kIgnoreIndex) {
      if (grad) std::fill(row, row + V, 0.0f);
    } else {
      float mx = row[0];
      for (int64_t v = 1; v < V; ++v) mx = std::max(mx, row[v]);
      const float target_logit = row[target];
      double sum = 0.0;
      for (int64_t v = 0; v < V; ++v) {
        row[v] = std::exp(row[v] - mx);
        sum += row[v];
      }
      total += std::log(sum) + mx - target_logit;
      if (grad) {
        const float factor = static_cast<float>(1.0 / sum) * grad_scale;
        for (int64_t v = 0; v < V; ++v) row[v] *= factor;
        row[target] -= grad_scale;
      }
    }
    if (grad && half_out) float_to_half(row, grad_type, half_out + r * V, V);
    else if (grad && grad_type != DType::F32) round_through_half(row, grad_type, V);
  }
  return total;
}

// W's rows [v0, v1) as fp32: a pointer into an fp32 W, or the half rows widened into w_block.
const float* weight_rows(const HeadWeight& w, int64_t D, int64_t v0, int64_t v1) {
  if (w.w32) return w.w32 + v0 * D;
  if (w.quantized) {
    w.quantized->dequantize_rows(v0, v1, w.w_block);
    return w.w_block;
  }
  half_to_float(w.w16 + v0 * D, w.w_type, w.w_block, (v1 - v0) * D);
  return w.w_block;
}

int64_t vocab_block(const HeadWeight& w, int64_t V) { return w.w32 ? V : std::min(w.vocab_block, V); }

// logits (n, V), row stride V = h (n, D) W^T, a vocabulary block at a time.
void chunk_logits(int64_t n, int64_t V, int64_t D, const float* h, const HeadWeight& w, float* logits) {
  const int64_t block = vocab_block(w, V);
  for (int64_t v0 = 0; v0 < V; v0 += block) {
    const int64_t v1 = std::min(V, v0 + block);
    gemm(false, true, n, v1 - v0, D, 1.0f, h, D, weight_rows(w, D, v0, v1), D, 0.0f, logits + v0, V);
  }
}

}  // namespace

double lm_head_loss(const HeadLossProblem& p, const float* h, const HeadWeight& w, float* logits, float* dh, float* dw) {
  const int64_t V = p.V, D = p.D, block = vocab_block(w, V);
  double total = 0.0;
  for (int64_t r0 = 0; r0 < p.N; r0 += p.chunk_rows) {
    const int64_t n = std::min(p.chunk_rows, p.N - r0);
    const float* hc = h + r0 * D;  // (n, D)
    chunk_logits(n, V, D, hc, w, logits);
    total += softmax_xent_rows(logits, p.targets + r0, n, V, p.grad_scale, dh != nullptr, p.grad_type, nullptr);
    if (!dh) continue;
    for (int64_t v0 = 0; v0 < V; v0 += block) {
      const int64_t v1 = std::min(V, v0 + block);
      const float* wb = weight_rows(w, D, v0, v1);  // (v1 - v0, D)
      // dh = dlogits W, summed over the vocabulary blocks
      gemm(false, false, n, D, v1 - v0, 1.0f, logits + v0, V, wb, D, v0 == 0 ? 0.0f : 1.0f, dh + r0 * D, D);
      // dW += dlogits^T h
      if (dw) gemm(true, false, v1 - v0, D, n, 1.0f, logits + v0, V, hc, D, 1.0f, dw + v0 * D, D);
    }
  }
  return total;
}

double lm_head_loss_half(const HeadLossProblem& p, DType type, const uint16_t* h, const HalfHeadWeight& w,
                         float* logits, uint16_t* dlogits_half, uint16_t* dh, float* dw) {
  const int64_t V = p.V, D = p.D;
  check(!w.quantized || !dw, "lm head: a quantised head is frozen (no weight gradient)");
  double total = 0.0;
  for (int64_t r0 = 0; r0 < p.N; r0 += p.chunk_rows) {
    const int64_t n = std::min(p.chunk_rows, p.N - r0);
    const uint16_t* hc = h + r0 * D;  // (n, D)
    if (w.quantized) {
      quantized_gemm_half(type, hc, n, *w.quantized, true, 0.0f, logits, w.tile);  // logits = h W^T
    } else {
      gemm_half(type, false, true, n, V, D, 1.0f, hc, D, w.w16, D, 0.0f, logits, V);
    }
    total += softmax_xent_rows(logits, p.targets + r0, n, V, p.grad_scale, dh != nullptr, type, dh ? dlogits_half : nullptr);
    if (!dh) continue;
    if (w.quantized) {  // dh = dlogits W
      quantized_gemm_half_out(type, dlogits_half, n, *w.quantized, false, nullptr, dh + r0 * D, w.tile);
    } else {
      gemm_half_out(type, false, false, n, D, V, 1.0f, dlogits_half, V, w.w16, D, nullptr, dh + r0 * D, D);
    }
    if (dw) gemm_half(type, true, false, V, D, n, 1.0f, dlogits_half, V, hc, D, 1.0f, dw, D);  // dW += dlogits^T h
  }
  return total;
}

void lm_head_logits(int64_t N, int64_t V, int64_t D, const float* h, const HeadWeight& w, float* logits) {
  if (N != 1) return chunk_logits(N, V, D, h, w, logits);
  // One row (generation's per-token step): GEMVs, about twice as fast as OpenBLAS's one-row GEMM.
  const int64_t block = vocab_block(w, V);
  for (int64_t v0 = 0; v0 < V; v0 += block) {
    const int64_t v1 = std::min(V, v0 + block);
    gemv(false, v1 - v0, D, 1.0f, weight_rows(w, D, v0, v1), D, h, 0.0f, logits + v0);  // W_block h
  }
}

}  // namespace frugal
