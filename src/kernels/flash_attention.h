#pragma once
// Fused causal multi-head self-attention in the manner of FlashAttention-2, on the CPU: queries and
// keys in square tiles, an online softmax (running max and sum per query row), so no more of the
// (T, T) scores than one tile per thread ever exists. Forward keeps one log-sum-exp per row; the
// backward recomputes each tile's probabilities from q, k and it.
//
// Layout as kernels/attention.h: qkv (B, T, 3D) with q, k, v as consecutive D-wide column blocks,
// head h at column h * hd (hd = D / H); y (B, T, D) with head h at column h * hd.
// Deterministic: each query tile (forward) and each (batch, head) pair (backward) is computed by one
// thread in a fixed order, so results do not depend on the thread count or schedule.
#include <cstdint>

#include "core/dtype.h"
#include "kernels/dropout.h"

namespace frugal {

// Query rows and keys per tile when none is set: 64 and 96 measured fastest at T = 1024 with hd = 64,
// 32 and 128 slower (docs/BENCHMARKS.md, "Fused attention").
constexpr int64_t kFlashDefaultTile = 64;
// Larger tiles than this hold a (tile, tile) score block of 16 MiB per thread: never useful.
constexpr int64_t kFlashMaxTile = 2048;

// fp32 scratch floats each OpenMP thread needs (callers allocate per_thread(...) of them).
int64_t flash_attention_forward_scratch(int64_t T, int64_t hd, int64_t tile);
// (with attention-probability dropout, two more (tile, tile) blocks: the mask and the dropped P)
int64_t flash_attention_backward_scratch(int64_t T, int64_t hd, int64_t tile, bool dropout = false);

// qkv, y, dy and dqkv are fp32 (type F32) or the half type `type` (F16/BF16, as uint16_t): the
// kernel copies (widens) each tile into its contiguous fp32 scratch, accumulates in fp32 and rounds
// what it writes.
// lse (B, H, T) stays fp32: the log of each query row's softmax denominator (scores scaled).
// scratch: per_thread(flash_attention_*_scratch(T, D / H, tile)) floats.
// `dropout` (or none): attention-probability dropout, the mask of element (b, h, i, j) that of
// ((b * H + h) * T + i) * T + j in the numbering key.first starts (regenerated per tile in backward).
// `positions` (or none: one sequence per row): (B, T) each token's position within its example, 0 at
// an example's first token (packing). Query i then sees keys [i - positions[i], i] only: attention
// never crosses an example's start, and key tiles wholly outside a query tile's examples are skipped,
// so a row of packed examples costs about what the examples cost alone.
void flash_attention_forward(DType type, const void* qkv, void* y, float* lse, int64_t B, int64_t T, int64_t D,
                             int64_t H, int64_t tile, float* scratch, const DropoutKey* dropout = nullptr,
                             const int32_t* positions = nullptr);
// y: the forward's output (for the per-row dot products rowsum(dY * Y)); dqkv (B, T, 3D) written.
void flash_attention_backward(DType type, const void* qkv, const void* y, const float* lse, const void* dy,
                              void* dqkv, int64_t B, int64_t T, int64_t D, int64_t H, int64_t tile, float* scratch,
                              const DropoutKey* dropout = nullptr, const int32_t* positions = nullptr);

}  // namespace frugal
