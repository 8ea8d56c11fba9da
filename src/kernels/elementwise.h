#pragma once
// Element-wise kernels, OpenMP-parallel. All f32.
#include <cstdint>

namespace frugal {

// y = a + b
void add(const float* a, const float* b, float* y, int64_t n);
// y += a
void add_inplace(float* y, const float* a, int64_t n);
// y *= alpha
void scale_inplace(float* y, float alpha, int64_t n);
// each of `rows` rows of y (cols wide) = bias
void broadcast_rows(const float* bias, float* y, int64_t rows, int64_t cols);

}  // namespace frugal
