#include "kernels/swiglu.h"

#include <cmath>

namespace frugal {

namespace {
inline float sigmoid(float g) { return 1.0f / (1.0f + std::exp(-g)); }
}  // namespace

void swiglu_forward(const float* gu, float* y, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* gate = gu + n * 2 * F;
    const float* up = gate + F;
    float* out = y + n * F;
    for (int64_t i = 0; i < F; ++i) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
  }
}

void swiglu_backward(const float* gu, const float* dy, float* dgu, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* gate = gu + n * 2 * F;
    const float* up = gate + F;
    const float* g = dy + n * F;
    float* dgate = dgu + n * 2 * F;
    float* dup = dgate + F;
    for (int64_t i = 0; i < F; ++i) {
      const float s = sigmoid(gate[i]);
      dup[i] = g[i] * gate[i] * s;
      dgate[i] = g[i] * up[i] * s * (1.0f + gate[i] * (1.0f - s));
    }
  }
}

}  // namespace frugal
