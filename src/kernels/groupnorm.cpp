#include "kernels/groupnorm.h"

#include <cmath>

namespace frugal {

void groupnorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                       int64_t N, int64_t C, int64_t S, int64_t G, float eps) {
  const int64_t cg = C / G, count = cg * S;
#pragma omp parallel for schedule(static)
  for (int64_t ng = 0; ng < N * G; ++ng) {
    const int64_t n = ng / G, g = ng % G;
    const float* xg = x + (n * C + g * cg) * S;  // (C/G, S), contiguous
    double sum = 0.0;
    for (int64_t i = 0; i < count; ++i) sum += xg[i];
    const double m = sum / static_cast<double>(count);
    double sq = 0.0;
    for (int64_t i = 0; i < count; ++i) sq += (xg[i] - m) * (xg[i] - m);
    const float r = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(count) + eps));
    mean[ng] = static_cast<float>(m);
    rstd[ng] = r;
    float* yg = y + (n * C + g * cg) * S;
    for (int64_t c = 0; c < cg; ++c) {
      const float scale = gamma[g * cg + c] * r, shift = beta[g * cg + c] - mean[ng] * scale;
      for (int64_t s = 0; s < S; ++s) yg[c * S + s] = xg[c * S + s] * scale + shift;
    }
  }
}

void groupnorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                        float* dx, float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t S, int64_t G) {
  const int64_t cg = C / G, count = cg * S;
  // dx per (sample, group): dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma.
#pragma omp parallel for schedule(static)
  for (int64_t ng = 0; ng < N * G; ++ng) {
    const int64_t n = ng / G, g = ng % G;
    const int64_t base = (n * C + g * cg) * S;
    const float m = mean[ng], r = rstd[ng];
    double mean_d = 0.0, mean_dx = 0.0;
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = base + c * S + s;
        const double d = static_cast<double>(dy[i]) * gamma[g * cg + c];
        mean_d += d;
        mean_dx += d * (x[i] - m) * r;
      }
    mean_d /= static_cast<double>(count);
    mean_dx /= static_cast<double>(count);
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = base + c * S + s;
        const double xhat = (x[i] - m) * r;
        dx[i] = static_cast<float>(r * (dy[i] * gamma[g * cg + c] - mean_d - xhat * mean_dx));
      }
  }
  if (!dgamma) return;
  // Per-channel sums over samples and positions: parallel over channels, so no two threads share one.
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const int64_t g = c / cg;
    double sg = 0.0, sb = 0.0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = (n * C + c) * S + s;
        sg += static_cast<double>(dy[i]) * (x[i] - mean[n * G + g]) * rstd[n * G + g];
        sb += dy[i];
      }
    dgamma[c] += static_cast<float>(sg);
    dbeta[c] += static_cast<float>(sb);
  }
}

}  // namespace frugal
