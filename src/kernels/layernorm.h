#pragma once
// LayerNorm over the last dimension: y = (x - mean) * rstd * w + b.
#include <cstdint>

namespace frugal {

// x, y: (N, D); mean, rstd: (N) saved for backward.
void layernorm_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                       int64_t N, int64_t D, float eps);

// dx: (N, D) written; dw, db: (D) accumulated (+=).
// partials: scratch of 2 * D * omp_get_max_threads() floats for per-thread dw/db sums.
void layernorm_backward(const float* x, const float* w, const float* mean, const float* rstd, const float* dy,
                        float* dx, float* dw, float* db, int64_t N, int64_t D, float* partials);

}  // namespace frugal
