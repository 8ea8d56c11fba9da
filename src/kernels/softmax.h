#pragma once
// Softmax of one row and its backward, in place and vectorised (attention's rows).
#include <cstdint>

namespace frugal {

// row[0..n) = exp(row - max) / sum(exp(row - max)), n >= 1.
void softmax_inplace(float* row, int64_t n);

// Backward of y = softmax(x) for one row, given y and dy: dy[j] = scale * y[j] (dy[j] - sum(y dy)).
void softmax_backward_inplace(const float* y, float* dy, int64_t n, float scale);

}  // namespace frugal
