#include "kernels/attention.h"

#include <omp.h>

#include <cmath>

#include "kernels/gemm.h"

namespace frugal {

void attention_forward(const float* qkv, float* y, float* att, int64_t B, int64_t T, int64_t D, int64_t H) {
  const int64_t hd = D / H;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t b = bh / H, h = bh % H;
    const float* q = qkv + b * T * 3 * D + h * hd;  // (T, hd), row stride 3D
    const float* k = q + D;
    const float* v = q + 2 * D;
    float* p = att + bh * T * T;  // (T, T)
    gemm(false, true, T, T, hd, scale, q, 3 * D, k, 3 * D, 0.0f, p, T);
    for (int64_t i = 0; i < T; ++i) {
      float* row = p + i * T;
      float mx = row[0];
      for (int64_t j = 1; j <= i; ++j) mx = std::max(mx, row[j]);
      float sum = 0.0f;
      for (int64_t j = 0; j <= i; ++j) {
        row[j] = std::exp(row[j] - mx);
        sum += row[j];
      }
      const float inv = 1.0f / sum;
      for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
      for (int64_t j = i + 1; j < T; ++j) row[j] = 0.0f;
    }
    gemm(false, false, T, hd, T, 1.0f, p, T, v, 3 * D, 0.0f, y + b * T * D + h * hd, D);
  }
}

void attention_backward(const float* qkv, const float* att, const float* dy, float* dqkv, int64_t B, int64_t T,
                        int64_t D, int64_t H, float* scratch) {
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
    gemm(false, true, T, T, hd, 1.0f, dyh, D, v, 3 * D, 0.0f, ds, T);  // dP = dY V^T
    gemm(true, false, T, hd, T, 1.0f, p, T, dyh, D, 0.0f, dv, 3 * D);  // dV = P^T dY
    // Softmax backward in place: dS = P * (dP - rowsum(P * dP)) * scale, zero above the diagonal.
    for (int64_t i = 0; i < T; ++i) {
      const float* pr = p + i * T;
      float* dr = ds + i * T;
      float dot = 0.0f;
      for (int64_t j = 0; j <= i; ++j) dot += pr[j] * dr[j];
      for (int64_t j = 0; j <= i; ++j) dr[j] = pr[j] * (dr[j] - dot) * scale;
      for (int64_t j = i + 1; j < T; ++j) dr[j] = 0.0f;
    }
    gemm(false, false, T, hd, T, 1.0f, ds, T, k, 3 * D, 0.0f, dq, 3 * D);  // dQ = dS K
    gemm(true, false, T, hd, T, 1.0f, ds, T, q, 3 * D, 0.0f, dk, 3 * D);   // dK = dS^T Q
  }
}

}  // namespace frugal
