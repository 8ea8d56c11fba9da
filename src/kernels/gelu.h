#pragma once
// GELU, tanh approximation (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#include <cstdint>

#include "core/dtype.h"

namespace frugal {

void gelu_forward(const float* x, float* y, int64_t n);
// dx = dy * gelu'(x)
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n);

// The same on half-precision x (F16/BF16) and y, computed in fp32 chunk by chunk: what the widening
// path computes, without its fp32 copies of x and y.
void gelu_forward_half(DType type, const uint16_t* x, uint16_t* y, int64_t n);
void gelu_backward_half(DType type, const uint16_t* x, const float* dy, float* dx, int64_t n);
// With dy and dx in the half type too (dx rounded from the fp32 result).
void gelu_backward_half(DType type, const uint16_t* x, const uint16_t* dy, uint16_t* dx, int64_t n);

}  // namespace frugal
