#pragma once
// Causal attention of new positions against a KV cache (generation, one sequence): the new rows'
// keys and values are appended to the cache, then every new query attends to all cached positions
// up to its own. BLAS per head (GEMV for one new row, GEMM for a prompt), OpenMP over heads.
#include <cstdint>

namespace frugal {

// qkv: (T, D + 2 Dkv) fp32, the T new positions past..past+T-1: q (H heads of width hd = D/H), then
// k and v (Hkv heads each, Dkv = Hkv hd; Hkv = H for GPT-2, fewer under grouped-query attention,
// where query head h reads key/value head h / (H / Hkv)). keys, values: (Hkv, capacity, hd), rows
// 0..past-1 filled; rows past..past+T-1 are written here (past + T <= capacity). y: (T, D) written.
// scratch: attention_cached_scratch(T, past) floats per OpenMP thread.
void attention_cached_forward(const float* qkv, float* keys, float* values, float* y, int64_t T, int64_t past,
                              int64_t capacity, int64_t D, int64_t H, int64_t Hkv, float* scratch);

// Floats of one thread's scratch: the (T, past + T) scores of one head.
inline int64_t attention_cached_scratch(int64_t T, int64_t past) { return T * (past + T); }

}  // namespace frugal
