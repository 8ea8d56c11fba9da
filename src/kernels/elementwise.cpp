#include "kernels/elementwise.h"

#include <algorithm>
#include <cstring>

#include "kernels/convert.h"

namespace frugal {

void add(const float* a, const float* b, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void add_half(DType type, const uint16_t* a, const uint16_t* b, uint16_t* y, int64_t n) {
  constexpr int64_t kChunk = 2048;  // values widened at a time: two chunks and the sum stay in L1
#pragma omp parallel for schedule(static)
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t m = std::min(kChunk, n - begin);
    float as[kChunk], bs[kChunk];
    half_to_float(a + begin, type, as, m);
    half_to_float(b + begin, type, bs, m);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) as[i] += bs[i];
    float_to_half(as, type, y + begin, m);
  }
}

void add_inplace(float* y, const float* a, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] += a[i];
}

void scale_inplace(float* y, float alpha, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] *= alpha;
}

void broadcast_rows(const float* bias, float* y, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) std::memcpy(y + r * cols, bias, static_cast<size_t>(cols) * sizeof(float));
}

}  // namespace frugal
