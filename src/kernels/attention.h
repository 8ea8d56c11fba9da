#pragma once
// Causal multi-head self-attention on a fused qkv tensor, BLAS GEMMs per (batch, head) over blocks of
// query rows that skip part of the masked upper triangle,
// OpenMP over (batch, head) pairs.
#include <cstdint>

namespace frugal {

// qkv: (B, T, 3D) with q, k, v as consecutive D-wide column blocks, heads H of width D/H.
// y: (B, T, D); att: (B, H, T, T) softmax probabilities, saved for backward (0 above the diagonal).
void attention_forward(const float* qkv, float* y, float* att, int64_t B, int64_t T, int64_t D, int64_t H);

// dqkv: (B, T, 3D) written. scratch: T * T * omp_get_max_threads() floats.
void attention_backward(const float* qkv, const float* att, const float* dy, float* dqkv, int64_t B, int64_t T,
                        int64_t D, int64_t H, float* scratch);

}  // namespace frugal
