#pragma once
// LayerNorm over the last dimension: y = (x - mean) * rstd * w + b.
#include <cstdint>

#include "core/dtype.h"

namespace frugal {

// x, y: (N, D); mean, rstd: (N) saved for backward.
void layernorm_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                       int64_t N, int64_t D, float eps);

// dx: (N, D) written; dw, db: (D) accumulated (+=).
// partials: scratch of 2 * D * omp_get_max_threads() floats for per-thread dw/db sums.
void layernorm_backward(const float* x, const float* w, const float* mean, const float* rstd, const float* dy,
                        float* dx, float* dw, float* db, int64_t N, int64_t D, float* partials);

// The same with x (and y) in a half type (F16/BF16): each row is widened into `rows` (2 * D floats
// per OpenMP thread) and computed in fp32 as above; y is rounded to the half type.
void layernorm_forward_half(DType type, const uint16_t* x, const float* w, const float* b, uint16_t* y, float* mean,
                            float* rstd, int64_t N, int64_t D, float eps, float* rows);
void layernorm_backward_half(DType type, const uint16_t* x, const float* w, const float* mean, const float* rstd,
                             const float* dy, float* dx, float* dw, float* db, int64_t N, int64_t D, float* partials,
                             float* rows);
// With dy in the half type as well (widened a row at a time into the second D floats of `rows`).
void layernorm_backward_half(DType type, const uint16_t* x, const float* w, const float* mean, const float* rstd,
                             const uint16_t* dy, float* dx, float* dw, float* db, int64_t N, int64_t D, float* partials,
                             float* rows);

}  // namespace frugal
