#include "kernels/embedding.h"

namespace frugal {

void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* y, int64_t B, int64_t T,
                       int64_t D) {
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const float* te = wte + static_cast<int64_t>(tokens[bt]) * D;
    const float* pe = wpe + (bt % T) * D;
    float* out = y + bt * D;
    for (int64_t i = 0; i < D; ++i) out[i] = te[i] + pe[i];
  }
}

void embedding_backward(const int32_t* tokens, const float* dy, float* dwte, float* dwpe, int64_t B, int64_t T,
                        int64_t D) {
  // Parallel over the embedding columns: each thread owns a slice of D, so scatters never race.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < D; ++i) {
    for (int64_t bt = 0; bt < B * T; ++bt) {
      const float g = dy[bt * D + i];
      dwte[static_cast<int64_t>(tokens[bt]) * D + i] += g;
      dwpe[(bt % T) * D + i] += g;
    }
  }
}

}  // namespace frugal
