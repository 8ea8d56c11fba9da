#include "kernels/rmsnorm.h"

#include <omp.h>

#include <cmath>
#include <cstring>

namespace frugal {

void rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, int64_t N, int64_t D, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = x + n * D;
    float squares = 0.0f;
    for (int64_t i = 0; i < D; ++i) squares += xr[i] * xr[i];
    const float r = 1.0f / std::sqrt(squares / static_cast<float>(D) + eps);
    for (int64_t i = 0; i < D; ++i) y[n * D + i] = xr[i] * r * w[i];
    rstd[n] = r;
  }
}

void rmsnorm_backward(const float* x, const float* w, const float* rstd, const float* dy, float* dx, float* dw,
                      int64_t N, int64_t D, float* partials) {
  const int threads = omp_get_max_threads();
  std::memset(partials, 0, sizeof(float) * D * threads);
#pragma omp parallel
  {
    float* dw_part = partials + D * omp_get_thread_num();
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float *xr = x + n * D, *dyr = dy + n * D;
      const float r = rstd[n];
      float mean_dn_n = 0.0f;  // mean(dy * w * n)
      for (int64_t i = 0; i < D; ++i) {
        const float normed = xr[i] * r;
        mean_dn_n += dyr[i] * w[i] * normed;
        dw_part[i] += dyr[i] * normed;
      }
      mean_dn_n /= static_cast<float>(D);
      for (int64_t i = 0; i < D; ++i) dx[n * D + i] = r * (dyr[i] * w[i] - xr[i] * r * mean_dn_n);
    }
  }
  for (int t = 0; t < threads; ++t)
    for (int64_t i = 0; i < D; ++i) dw[i] += partials[t * D + i];
}

}  // namespace frugal
