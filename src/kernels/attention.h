#pragma once
// Causal multi-head self-attention on a fused qkv tensor, BLAS GEMMs per (batch, head) over blocks of
// query rows that skip part of the masked upper triangle,
// OpenMP over (batch, head) pairs.
#include <cstdint>

#include "core/dtype.h"
#include "kernels/dropout.h"

namespace frugal {

// qkv: (B, T, 3D) with q, k, v as consecutive D-wide column blocks, heads H of width D/H.
// y: (B, T, D); att: (B, H, T, T) softmax probabilities, saved for backward (0 above the diagonal).
// With `dropout` (attention-probability dropout; key.first = the micro-batch's first element in
// the optimizer batch's (B, H, T, T) numbering) P V takes the dropped probabilities, built a block of
// rows at a time in `dropped` (64 x T floats per OpenMP thread); att keeps P itself.
void attention_forward(const float* qkv, float* y, float* att, int64_t B, int64_t T, int64_t D, int64_t H,
                       const DropoutKey* dropout = nullptr, float* dropped = nullptr);
// Rows of the forward's `dropped` scratch per thread.
constexpr int64_t kAttentionDropoutRows = 64;

// dqkv: (B, T, 3D) written. scratch: T * T * omp_get_max_threads() floats.
// With `dropout`: the same mask (regenerated) on P for dV and on dP.
void attention_backward(const float* qkv, const float* att, const float* dy, float* dqkv, int64_t B, int64_t T,
                        int64_t D, int64_t H, float* scratch, const DropoutKey* dropout = nullptr);

// The same in a half type (F16/BF16 where kernels/gemm.h has_half_gemm): qkv and the saved
// probabilities are half, the products run on the CPU's half-precision units with fp32
// accumulation, all heads of one batch item per call (gemm_half_batched), the softmax in fp32. The
// full (T, T) products are computed (no row blocks): one call per item is what keeps the library's
// per-call cost away, and the bf16 units are fast enough that the masked half costs less.
// scores: (H, T, T) fp32 scratch. y: (B, T, D) and att: (B, H, T, T) written in `type`.
void attention_forward_half(DType type, const uint16_t* qkv, uint16_t* y, uint16_t* att, float* scores, int64_t B,
                            int64_t T, int64_t D, int64_t H, const DropoutKey* dropout = nullptr);
// dy_half: (B, T, D) and dqkv: (B, T, 3D) in `type` (the gradient handed on in the storage type).
// scores: (H, T, T) fp32 and scores_half: (H, T, T) in `type`, scratch; rows: T floats per OpenMP thread.
void attention_backward_half(DType type, const uint16_t* qkv, const uint16_t* att, const uint16_t* dy_half,
                             uint16_t* dqkv, int64_t B, int64_t T, int64_t D, int64_t H, float* scores,
                             uint16_t* scores_half, float* rows, const DropoutKey* dropout = nullptr);

}  // namespace frugal
