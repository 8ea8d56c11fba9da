#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/convert.h"
#include "kernels/dropout.h"
#include "kernels/gemm.h"
#include "kernels/softmax.h"

namespace frugal {

namespace {
// Causal attention only needs the lower triangle of the (T, T) scores. Rows are taken in blocks of
// kRowBlock: block [i0, i1) multiplies against keys 0..i1 only, which skips part of the upper
// triangle (at T = 128 a quarter of the full products). Smaller blocks skip more but the GEMMs get
// small enough for their call and packing overhead to eat the gain (32 measured no faster than 64).
constexpr int64_t kRowBlock = 64;
static_assert(kAttentionDropoutRows >= kRowBlock, "the forward's dropout scratch holds one row block");

// Row i of (batch, head) pair bh's (T, T) probabilities, keys 0..i, through the dropout mask of
// element ((bh * T + i) * T + j) (the rest of the row is 0 and stays so).
void dropout_row(const DropoutKey& key, int64_t bh, int64_t i, int64_t T, const float* row, float* out) {
  DropoutKey k = key;
  k.first += static_cast<uint64_t>((bh * T + i) * T);
  dropout_apply_serial(k, row, out, i + 1);
  std::fill(out + i + 1, out + T, 0.0f);
}

// The (H, T, T) half probabilities of one batch item (pairs bh0 ..) through the dropout mask, into
// out (as many half values): each row widened, masked and rounded.
const uint16_t* drop_rows_half(DType type, const DropoutKey& key, int64_t bh0, int64_t H, int64_t T, const uint16_t* p,
                               void* out) {
  uint16_t* dropped = static_cast<uint16_t*>(out);
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(T));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < H * T; ++r) {
      const int64_t i = r % T;
      half_to_float(p + r * T, type, row.data(), i + 1);
      dropout_row(key, bh0 + r / T, i, T, row.data(), row.data());
      float_to_half(row.data(), type, dropped + r * T, T);
    }
  }
  return dropped;
}
}  // namespace

void attention_forward(const float* qkv, float* y, float* att, int64_t B, int64_t T, int64_t D, int64_t H,
                       const DropoutKey* dropout, float* dropped) {
  const int64_t hd = D / H;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t b = bh / H, h = bh % H;
    const float* q = qkv + b * T * 3 * D + h * hd;  // (T, hd), row stride 3D
    const float* k = q + D;
    const float* v = q + 2 * D;
    float* p = att + bh * T * T;  // (T, T)
    float* yh = y + b * T * D + h * hd;  // (T, hd), row stride D
    for (int64_t i0 = 0; i0 < T; i0 += kRowBlock) {
      const int64_t i1 = std::min(T, i0 + kRowBlock), n = i1 - i0;
      gemm(false, true, n, i1, hd, scale, q + i0 * 3 * D, 3 * D, k, 3 * D, 0.0f, p + i0 * T, T);  // S = Q K^T
      for (int64_t i = i0; i < i1; ++i) {
        float* row = p + i * T;
        softmax_inplace(row, i + 1);
        std::fill(row + i + 1, row + T, 0.0f);
      }
      const float* pv = p + i0 * T;  // P, or its dropped copy (the saved P stays whole for backward)
      if (dropout) {
        float* pd = dropped + static_cast<int64_t>(omp_get_thread_num()) * kAttentionDropoutRows * T;
        for (int64_t i = i0; i < i1; ++i) dropout_row(*dropout, bh, i, T, p + i * T, pd + (i - i0) * T);
        pv = pd;
      }
      gemm(false, false, n, hd, i1, 1.0f, pv, T, v, 3 * D, 0.0f, yh + i0 * D, D);  // Y = P V
    }
  }
}

void attention_backward(const float* qkv, const float* att, const float* dy, float* dqkv, int64_t B, int64_t T,
                        int64_t D, int64_t H, float* scratch, const DropoutKey* dropout) {
  const int64_t hd = D / H;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t b = bh / H, h = bh % H;
    const int64_t col = b * T * 3 * D + h * hd;
    const float* q = qkv + col;
    const float* k = q + D;
    const float* v = q + 2 * D;
    float* dq = dqkv + col;
    float* dk = dq + D;
    float* dv = dq + 2 * D;
    const float* p = att + bh * T * T;
    const float* dyh = dy + b * T * D + h * hd;  // (T, hd), row stride D
    float* ds = scratch + static_cast<int64_t>(omp_get_thread_num()) * T * T;
    // Last block first: it covers every key, so its dV and dK products initialise them (beta 0) and
    // the earlier, shorter blocks add into their leading rows.
    const int64_t last = (T - 1) / kRowBlock * kRowBlock;
    for (int64_t i0 = last; i0 >= 0; i0 -= kRowBlock) {
      const int64_t i1 = std::min(T, i0 + kRowBlock), n = i1 - i0;
      const float beta = i0 == last ? 0.0f : 1.0f;
      float* dsb = ds + i0 * T;
      const float* pv = p + i0 * T;  // the P that multiplied V: with dropout its dropped copy, in dsb first
      if (dropout) {
        for (int64_t i = i0; i < i1; ++i) dropout_row(*dropout, bh, i, T, p + i * T, ds + i * T);
        pv = dsb;
      }
      gemm(true, false, i1, hd, n, 1.0f, pv, T, dyh + i0 * D, D, beta, dv, 3 * D);          // dV += P^T dY
      gemm(false, true, n, i1, hd, 1.0f, dyh + i0 * D, D, v, 3 * D, 0.0f, dsb, T);          // dP = dY V^T
      // dS = P * (dP - rowsum(P * dP)) * scale, zero above the diagonal (dP through the mask first).
      for (int64_t i = i0; i < i1; ++i) {
        float* dr = ds + i * T;
        if (dropout) dropout_row(*dropout, bh, i, T, dr, dr);
        softmax_backward_inplace(p + i * T, dr, i + 1, scale);
        std::fill(dr + i + 1, dr + i1, 0.0f);
      }
      gemm(false, false, n, hd, i1, 1.0f, dsb, T, k, 3 * D, 0.0f, dq + i0 * 3 * D, 3 * D);  // dQ = dS K
      gemm(true, false, i1, hd, n, 1.0f, dsb, T, q + i0 * 3 * D, 3 * D, beta, dk, 3 * D);   // dK += dS^T Q
    }
  }
}

void attention_forward_half(DType type, const uint16_t* qkv, uint16_t* y, uint16_t* att, float* scores, int64_t B,
                            int64_t T, int64_t D, int64_t H, const DropoutKey* dropout) {
  const int64_t hd = D / H;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t b = 0; b < B; ++b) {
    const uint16_t* q = qkv + b * T * 3 * D;  // head h at column h * hd, row stride 3D
    const uint16_t *k = q + D, *v = q + 2 * D;
    uint16_t* p = att + b * H * T * T;  // (H, T, T)
    gemm_half_batched(type, H, false, true, T, T, hd, scale, q, 3 * D, hd, k, 3 * D, hd, 0.0f, scores, T, T * T);  // Q K^T
    // Each row's softmax in fp32, rounded straight into P (one pass, no second loop over the scores).
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < H * T; ++r) {
      const int64_t i = r % T;  // the query position: keys 0..i
      float* row = scores + r * T;
      softmax_inplace(row, i + 1);
      float_to_half(row, type, p + r * T, i + 1);
      std::fill(p + r * T + i + 1, p + (r + 1) * T, uint16_t{0});  // +0 in both half types
    }
    // With dropout P V takes the dropped probabilities, rounded into the spent fp32 scores' first half.
    const uint16_t* pv = dropout ? drop_rows_half(type, *dropout, b * H, H, T, p, scores) : p;
    gemm_half_batched_out(type, H, false, false, T, hd, T, 1.0f, pv, T, T * T, v, 3 * D, hd, y + b * T * D, D, hd);  // P V
  }
}

void attention_backward_half(DType type, const uint16_t* qkv, const uint16_t* att, const uint16_t* dy_half,
                             uint16_t* dqkv, int64_t B, int64_t T, int64_t D, int64_t H, float* scores,
                             uint16_t* scores_half, float* rows, const DropoutKey* dropout) {
  const int64_t hd = D / H;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t b = 0; b < B; ++b) {
    const uint16_t* q = qkv + b * T * 3 * D;
    const uint16_t *k = q + D, *v = q + 2 * D;
    const uint16_t* p = att + b * H * T * T;
    const uint16_t* dy = dy_half + b * T * D;  // head h at column h * hd, row stride D
    uint16_t* dq = dqkv + b * T * 3 * D;
    uint16_t *dk = dq + D, *dv = dq + 2 * D;
    // dV from the probabilities that multiplied V (with dropout: dropped again, into scores_half).
    const uint16_t* pv = dropout ? drop_rows_half(type, *dropout, b * H, H, T, p, scores_half) : p;
    gemm_half_batched_out(type, H, true, false, T, hd, T, 1.0f, pv, T, T * T, dy, D, hd, dv, 3 * D, hd);      // dV = P^T dY
    gemm_half_batched(type, H, false, true, T, T, hd, 1.0f, dy, D, hd, v, 3 * D, hd, 0.0f, scores, T, T * T);  // dP = dY V^T
    // dS = P * (dP - rowsum(P * dP)) * scale, zero above the diagonal; P widened a row at a time, dS
    // rounded straight into its half copy for the two products below.
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < H * T; ++r) {
      const int64_t i = r % T;
      float* prow = rows + static_cast<int64_t>(omp_get_thread_num()) * T;
      half_to_float(p + r * T, type, prow, i + 1);
      float* ds = scores + r * T;
      if (dropout) dropout_row(*dropout, b * H + r / T, i, T, ds, ds);  // dP through the mask
      softmax_backward_inplace(prow, ds, i + 1, scale);
      float_to_half(ds, type, scores_half + r * T, i + 1);
      std::fill(scores_half + r * T + i + 1, scores_half + (r + 1) * T, uint16_t{0});
    }
    gemm_half_batched_out(type, H, false, false, T, hd, T, 1.0f, scores_half, T, T * T, k, 3 * D, hd, dq, 3 * D, hd);  // dQ = dS K
    gemm_half_batched_out(type, H, true, false, T, hd, T, 1.0f, scores_half, T, T * T, q, 3 * D, hd, dk, 3 * D, hd);   // dK = dS^T Q
  }
}

}  // namespace frugal
