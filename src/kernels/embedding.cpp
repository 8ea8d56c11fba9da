#include "kernels/embedding.h"

#include <algorithm>
#include <vector>

#include "kernels/convert.h"

namespace frugal {

void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* y, int64_t B, int64_t T,
                       int64_t D, const int32_t* positions) {
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const float* te = wte + static_cast<int64_t>(tokens[bt]) * D;
    float* out = y + bt * D;
    if (!wpe) {
      std::copy(te, te + D, out);
      continue;
    }
    const float* pe = wpe + (positions ? positions[bt] : bt % T) * D;
    for (int64_t i = 0; i < D; ++i) out[i] = te[i] + pe[i];
  }
}

void embedding_forward_half(DType type, const int32_t* tokens, const uint16_t* wte, const uint16_t* wpe, float* y,
                            int64_t B, int64_t T, int64_t D, const int32_t* positions) {
#pragma omp parallel
  {
    std::vector<float> position(static_cast<size_t>(D));  // this thread's widened wpe row
#pragma omp for schedule(static)
    for (int64_t bt = 0; bt < B * T; ++bt) {
      float* out = y + bt * D;
      half_to_float(wte + static_cast<int64_t>(tokens[bt]) * D, type, out, D);
      if (!wpe) continue;
      half_to_float(wpe + (positions ? positions[bt] : bt % T) * D, type, position.data(), D);
      for (int64_t i = 0; i < D; ++i) out[i] += position[i];
    }
  }
}

void embedding_backward(const int32_t* tokens, const float* dy, float* dwte, float* dwpe, int64_t B, int64_t T,
                        int64_t D, const int32_t* positions) {
  // Parallel over blocks of embedding columns: each thread owns a slice of D, so scatters never
  // race, and reads whole cache lines of dy row after row (a column at a time strides through all
  // of dy once per column). Each element still sums its rows in order: the same result.
  constexpr int64_t kColumns = 64;
#pragma omp parallel for schedule(static)
  for (int64_t c0 = 0; c0 < D; c0 += kColumns) {
    const int64_t c1 = std::min(D, c0 + kColumns);
    for (int64_t bt = 0; bt < B * T; ++bt) {
      const float* g = dy + bt * D;
      float* te = dwte + static_cast<int64_t>(tokens[bt]) * D;
      for (int64_t i = c0; i < c1; ++i) te[i] += g[i];
      if (!dwpe) continue;
      float* pe = dwpe + (positions ? positions[bt] : bt % T) * D;
      for (int64_t i = c0; i < c1; ++i) pe[i] += g[i];
    }
  }
}

}  // namespace frugal
