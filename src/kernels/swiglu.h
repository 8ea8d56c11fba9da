#pragma once
// SwiGLU's gating (Llama's MLP: down(silu(gate(x)) * up(x))), on the two projections side by side:
// gu (N, 2F) holds gate in columns 0..F-1 and up in F..2F-1; y (N, F) = silu(gate) * up with
// silu(g) = g sigmoid(g).
#include <cstdint>

namespace frugal {

void swiglu_forward(const float* gu, float* y, int64_t N, int64_t F);
// dgu (N, 2F) written: d gate = dy up silu'(gate), d up = dy silu(gate), with
// silu'(g) = sigmoid(g) (1 + g (1 - sigmoid(g))).
void swiglu_backward(const float* gu, const float* dy, float* dgu, int64_t N, int64_t F);

}  // namespace frugal
