#pragma once
// RMSNorm over the last dimension (Llama): y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps).
#include <cstdint>

namespace frugal {

// x, y: (N, D); rstd: (N) saved for backward.
void rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, int64_t N, int64_t D, float eps);

// dx (N, D) written; dw (D) accumulated (+=). With n = x * rstd: dw += sum over rows of dy * n and
// dx = rstd * (dy * w - n * mean(dy * w * n)). partials: D floats per OpenMP thread (dw's partial sums,
// added in thread order: deterministic for a fixed thread count).
void rmsnorm_backward(const float* x, const float* w, const float* rstd, const float* dy, float* dx, float* dw,
                      int64_t N, int64_t D, float* partials);

}  // namespace frugal
