#pragma once
// Grouped-query attention's heads (Llama, Qwen2; issue 20): H query heads share Hkv key/value heads,
// query head h reading key/value head h / (H / Hkv) (Hugging Face's repeat_kv). The attention
// kernels take one key and value head per query head, so a pass expands the packed projections
// into that layout and its backward sums each group's gradients back into the shared head.
#include <cstddef>
#include <cstdint>

namespace frugal {

// packed (N, D + 2 Dkv): q (H heads), k and v (Hkv heads each), every head hd wide (D = H hd,
// Dkv = Hkv hd). qkv (N, 3 D): q as it is, k and v with each shared head repeated for its group.
// A copy of values of `element_bytes` each: fp32, or the half copies stored under fp16/bf16.
void expand_kv_heads(const void* packed, void* qkv, int64_t N, int64_t H, int64_t Hkv, int64_t hd,
                     size_t element_bytes = sizeof(float));

// The transpose: dqkv (N, 3 D) -> dpacked (N, D + 2 Dkv), dq copied, dk and dv summed over each group.
void reduce_kv_heads(const float* dqkv, float* dpacked, int64_t N, int64_t H, int64_t Hkv, int64_t hd);

}  // namespace frugal
