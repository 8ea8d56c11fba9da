#pragma once
// Token + position embedding (GPT-2); token embedding alone (Llama) where wpe / dwpe is null.
#include <cstdint>

#include "core/dtype.h"

namespace frugal {

// tokens: (B, T) ids already range-checked; wte: (V, D); wpe: (>=T, D); y: (B, T, D).
// positions (or null: token t at row t of wpe): (B, T) wpe rows, already range-checked (packing).
void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* y, int64_t B, int64_t T,
                       int64_t D, const int32_t* positions = nullptr);
// The same with wte and wpe stored in a half type (F16/BF16): each looked-up row widened on its own,
// never the whole table. y stays fp32.
void embedding_forward_half(DType type, const int32_t* tokens, const uint16_t* wte, const uint16_t* wpe, float* y,
                            int64_t B, int64_t T, int64_t D, const int32_t* positions = nullptr);
// dwte, dwpe accumulated (+=). Parallel over the D columns, so repeated ids never race.
void embedding_backward(const int32_t* tokens, const float* dy, float* dwte, float* dwpe, int64_t B, int64_t T,
                        int64_t D, const int32_t* positions = nullptr);

}  // namespace frugal
