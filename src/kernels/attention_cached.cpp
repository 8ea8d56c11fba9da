#include "kernels/attention_cached.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/gemm.h"
#include "kernels/softmax.h"

namespace frugal {

namespace {
// Key/value head h's keys and values of the new rows into the cache rows past..past+T-1.
void append_head(const float* qkv, float* k_cache, float* v_cache, int64_t T, int64_t past, int64_t D, int64_t Dkv,
                 int64_t hd, int64_t h) {
  for (int64_t t = 0; t < T; ++t) {
    const float* row = qkv + t * (D + 2 * Dkv) + h * hd;
    std::copy(row + D, row + D + hd, k_cache + (past + t) * hd);
    std::copy(row + D + Dkv, row + D + Dkv + hd, v_cache + (past + t) * hd);
  }
}
}  // namespace

void attention_cached_forward(const float* qkv, float* keys, float* values, float* y, int64_t T, int64_t past,
                              int64_t capacity, int64_t D, int64_t H, int64_t Hkv, float* scratch) {
  const int64_t hd = D / H, Dkv = Hkv * hd, group = H / Hkv, stride = D + 2 * Dkv;
  const int64_t L = past + T;  // the positions attended to by the last new row
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Every shared head's new rows first: a group's query heads all read them.
#pragma omp parallel for schedule(static)
  for (int64_t h = 0; h < Hkv; ++h)
    append_head(qkv, keys + h * capacity * hd, values + h * capacity * hd, T, past, D, Dkv, hd, h);
#pragma omp parallel for schedule(static)
  for (int64_t h = 0; h < H; ++h) {
    const float* k = keys + (h / group) * capacity * hd;    // (capacity, hd), rows 0..L-1 used
    const float* v = values + (h / group) * capacity * hd;  // (capacity, hd)
    const float* q = qkv + h * hd;  // (T, hd), row stride D + 2 Dkv
    float* yh = y + h * hd;         // (T, hd), row stride D
    float* s = scratch + static_cast<int64_t>(omp_get_thread_num()) * attention_cached_scratch(T, past);  // (T, L)
    if (T == 1) {
      gemv(false, L, hd, scale, k, hd, q, 0.0f, s);  // s = K q
      softmax_inplace(s, L);
      gemv(true, L, hd, 1.0f, v, hd, s, 0.0f, yh);  // y = V^T p
      continue;
    }
    gemm(false, true, T, L, hd, scale, q, stride, k, hd, 0.0f, s, L);  // S = Q K^T
    for (int64_t i = 0; i < T; ++i) {  // row i is position past + i: it sees keys 0..past+i
      float* row = s + i * L;
      softmax_inplace(row, past + i + 1);
      std::fill(row + past + i + 1, row + L, 0.0f);
    }
    gemm(false, false, T, hd, L, 1.0f, s, L, v, hd, 0.0f, yh, D);  // Y = P V
  }
}

}  // namespace frugal
