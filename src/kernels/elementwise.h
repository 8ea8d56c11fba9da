#pragma once
// Element-wise kernels, OpenMP-parallel. All f32 but add_half.
#include <cstdint>

#include "core/dtype.h"

namespace frugal {

// y = a + b
void add(const float* a, const float* b, float* y, int64_t n);
// y = half(a + b) with a, b and y in `type` (F16/BF16), the sum in fp32: what widening both,
// add() and rounding the result give, in one pass and without the fp32 copies.
void add_half(DType type, const uint16_t* a, const uint16_t* b, uint16_t* y, int64_t n);
// y += a
void add_inplace(float* y, const float* a, int64_t n);
// y *= alpha
void scale_inplace(float* y, float alpha, int64_t n);
// each of `rows` rows of y (cols wide) = bias
void broadcast_rows(const float* bias, float* y, int64_t rows, int64_t cols);

}  // namespace frugal
