// Compiled with -ffast-math (CMakeLists.txt), like gelu.cpp: that makes glibc declare libmvec's
// vector expf, and lets the max and sum reductions run in vector lanes instead of one dependent
// scalar chain per row. Scalar expf and the serial sums took half of attention's forward pass.
// The order of the sum differs from a left-to-right loop, the same on every call (recomputation
// stays bit-identical). A NaN in the row still makes the whole row NaN through exp and the sum.
#include "kernels/softmax.h"

#include <cmath>

namespace frugal {

void softmax_inplace(float* row, int64_t n) {
  float mx = row[0];
  for (int64_t j = 1; j < n; ++j) mx = row[j] > mx ? row[j] : mx;
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    row[j] = expf(row[j] - mx);
    sum += row[j];
  }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
}

void softmax_backward_inplace(const float* y, float* dy, int64_t n, float scale) {
  float dot = 0.0f;
  for (int64_t j = 0; j < n; ++j) dot += y[j] * dy[j];
  for (int64_t j = 0; j < n; ++j) dy[j] = y[j] * (dy[j] - dot) * scale;
}

}  // namespace frugal
