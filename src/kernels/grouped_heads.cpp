#include "kernels/grouped_heads.h"

#include <algorithm>
#include <cstring>

namespace frugal {

void expand_kv_heads(const void* packed, void* qkv, int64_t N, int64_t H, int64_t Hkv, int64_t hd,
                     size_t element_bytes) {
  const int64_t D = H * hd, Dkv = Hkv * hd, group = H / Hkv, in_width = D + 2 * Dkv;
  const size_t e = element_bytes;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const char* in = static_cast<const char*>(packed) + n * in_width * e;
    char* out = static_cast<char*>(qkv) + n * 3 * D * e;
    std::memcpy(out, in, D * e);
    for (int64_t part = 1; part <= 2; ++part)  // k, then v
      for (int64_t h = 0; h < H; ++h)
        std::memcpy(out + (part * D + h * hd) * e, in + (D + (part - 1) * Dkv + (h / group) * hd) * e, hd * e);
  }
}

void reduce_kv_heads(const float* dqkv, float* dpacked, int64_t N, int64_t H, int64_t Hkv, int64_t hd) {
  const int64_t D = H * hd, Dkv = Hkv * hd, group = H / Hkv, out_width = D + 2 * Dkv;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* in = dqkv + n * 3 * D;
    float* out = dpacked + n * out_width;
    std::copy(in, in + D, out);
    std::fill(out + D, out + out_width, 0.0f);
    for (int64_t part = 1; part <= 2; ++part)
      for (int64_t h = 0; h < H; ++h) {
        const float* g = in + part * D + h * hd;
        float* shared = out + D + (part - 1) * Dkv + (h / group) * hd;
        for (int64_t i = 0; i < hd; ++i) shared[i] += g[i];
      }
  }
}

}  // namespace frugal
