#pragma once
// Token + position embedding (GPT-2).
#include <cstdint>

namespace frugal {

// tokens: (B, T) ids already range-checked; wte: (V, D); wpe: (>=T, D); y: (B, T, D).
void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* y, int64_t B, int64_t T,
                       int64_t D);
// dwte, dwpe accumulated (+=). Parallel over the D columns, so repeated ids never race.
void embedding_backward(const int32_t* tokens, const float* dy, float* dwte, float* dwpe, int64_t B, int64_t T,
                        int64_t D);

}  // namespace frugal
