#include "kernels/layernorm.h"

#include <omp.h>

#include <cmath>
#include <cstring>

namespace frugal {

void layernorm_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                       int64_t N, int64_t D, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = x + n * D;
    float sum = 0.0f;
    for (int64_t i = 0; i < D; ++i) sum += xr[i];
    const float m = sum / static_cast<float>(D);
    float var = 0.0f;
    for (int64_t i = 0; i < D; ++i) var += (xr[i] - m) * (xr[i] - m);
    const float r = 1.0f / std::sqrt(var / static_cast<float>(D) + eps);
    float* yr = y + n * D;
    for (int64_t i = 0; i < D; ++i) yr[i] = (xr[i] - m) * r * w[i] + b[i];
    mean[n] = m;
    rstd[n] = r;
  }
}

void layernorm_backward(const float* x, const float* w, const float* mean, const float* rstd, const float* dy,
                        float* dx, float* dw, float* db, int64_t N, int64_t D, float* partials) {
  const int threads = omp_get_max_threads();
  std::memset(partials, 0, sizeof(float) * 2 * D * threads);
#pragma omp parallel
  {
    float* dw_part = partials + 2 * D * omp_get_thread_num();
    float* db_part = dw_part + D;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = x + n * D;
      const float* dyr = dy + n * D;
      const float m = mean[n], r = rstd[n];
      // dnorm = dy * w; dx = r * (dnorm - mean(dnorm) - xhat * mean(dnorm * xhat))
      float mean_dnorm = 0.0f, mean_dnorm_xhat = 0.0f;
      for (int64_t i = 0; i < D; ++i) {
        const float xhat = (xr[i] - m) * r;
        const float dnorm = dyr[i] * w[i];
        mean_dnorm += dnorm;
        mean_dnorm_xhat += dnorm * xhat;
        dw_part[i] += dyr[i] * xhat;
        db_part[i] += dyr[i];
      }
      mean_dnorm /= static_cast<float>(D);
      mean_dnorm_xhat /= static_cast<float>(D);
      float* dxr = dx + n * D;
      for (int64_t i = 0; i < D; ++i) {
        const float xhat = (xr[i] - m) * r;
        dxr[i] = r * (dyr[i] * w[i] - mean_dnorm - xhat * mean_dnorm_xhat);
      }
    }
  }
  // Threads' partial sums are added in thread order: deterministic for a fixed thread count.
  for (int t = 0; t < threads; ++t) {
    const float* dw_part = partials + 2 * D * t;
    for (int64_t i = 0; i < D; ++i) {
      dw[i] += dw_part[i];
      db[i] += dw_part[D + i];
    }
  }
}

}  // namespace frugal
