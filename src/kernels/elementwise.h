#pragma once
// Element-wise kernels, OpenMP-parallel. All f32.
#include <cstdint>

namespace frugal {

// GELU, tanh approximation (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
void gelu_forward(const float* x, float* y, int64_t n);
// dx = dy * gelu'(x)
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n);
// y = a + b
void add(const float* a, const float* b, float* y, int64_t n);
// y += a
void add_inplace(float* y, const float* a, int64_t n);
// each of `rows` rows of y (cols wide) = bias
void broadcast_rows(const float* bias, float* y, int64_t rows, int64_t cols);

}  // namespace frugal
