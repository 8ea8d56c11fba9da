#pragma once
// GroupNorm (Wu & He, 2018) over x (N, C, S): the C channels form G groups; each (sample, group)
// is normalised over its (C/G) * S values, then scaled and shifted per channel. No batch
// dependence: every sample is normalised on its own.
#include <cstdint>

namespace frugal {

// y (N, C, S); mean, rstd (N, G) saved for backward.
void groupnorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                       int64_t N, int64_t C, int64_t S, int64_t G, float eps);

// dx (N, C, S) written; dgamma, dbeta (C) accumulated (+=), or skipped when null.
void groupnorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                        float* dx, float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t S, int64_t G);

}  // namespace frugal
