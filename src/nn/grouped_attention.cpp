#include "nn/grouped_attention.h"

#include "core/error.h"
#include "kernels/convert.h"
#include "kernels/grouped_heads.h"
#include "kernels/rope.h"
#include "nn/half_storage.h"

namespace frugal {

GroupedQueryAttention::GroupedQueryAttention(int64_t heads, int64_t kv_heads, int64_t head_dim,
                                             std::vector<float> inverse_frequencies)
    : heads_(heads), kv_heads_(kv_heads), head_dim_(head_dim), width_(heads * head_dim),
      inverse_frequencies_(std::move(inverse_frequencies)), attn_(width_, heads) {
  check(head_dim > 0, "attention: head_dim must be positive");
  check(kv_heads > 0 && heads % kv_heads == 0, "attention: num_attention_heads " + std::to_string(heads) +
                                                   " is not divisible by num_key_value_heads " +
                                                   std::to_string(kv_heads));
  check(static_cast<int64_t>(inverse_frequencies_.size()) * 2 == head_dim_,
        "attention: rotary frequencies for another head dimension");
}

namespace {
// The pass's example positions (RunContext::positions) for (B, T) rows; null when none or measuring.
const int32_t* example_positions(const RunContext& rc, int64_t B, int64_t T) {
  if (!rc.positions || !rc.positions->has_data()) return nullptr;
  check(rc.positions->numel() == B * T, "grouped attention: positions " + rc.positions->shape().str() +
                                            " do not match the (" + std::to_string(B) + ", " + std::to_string(T) +
                                            ") rows");
  return rc.positions->i32();
}
}  // namespace

Tensor GroupedQueryAttention::forward(const Tensor& packed, Saved& saved, const RunContext& rc) {
  check(packed.ndim() == 3 && packed.dim(2) == packed_width(), "grouped attention: expected (B, T, " +
                                                                   std::to_string(packed_width()) + "), got " +
                                                                   packed.shape().str());
  const int64_t B = packed.dim(0), T = packed.dim(1);
  Tensor rotated = Tensor::empty(packed.shape(), DType::F32, MemCategory::Activations);  // (B, T, A + 2 Dkv)
  Tensor qkv = Tensor::empty({B, T, 3 * width_}, DType::F32, MemCategory::Activations); // (B, T, 3A)
  const Tensor x = widen_activation(packed, rc);  // fp32 (a workspace copy of a half input)
  if (!measuring(packed)) {
    std::copy(x.f32(), x.f32() + x.numel(), rotated.f32());
    // q's H heads and k's Hkv heads are the first columns of each row: one rotation over both.
    rope_apply(rotated.f32(), B, T, heads_ + kv_heads_, head_dim_, 0, inverse_frequencies_, false, packed_width(),
               example_positions(rc, B, T));
    expand_kv_heads(rotated.f32(), qkv.f32(), B * T, heads_, kv_heads_, head_dim_);
  }
  Saved& inner = saved.child(0);
  Tensor y = forward_child(attn_, round_activation(qkv, rc), inner, rc);
  // The inner attention saved the expanded qkv; keep the rotated projections instead, (A + 2 Dkv)
  // values a position rather than 3A, and expand them again for backward: a copy, so the same values
  // (rounded to the half type or not) as the ones saved.
  saved.tensors = {round_activation(rotated, rc)};
  inner.tensors.at(0) = Tensor();
  return y;
}

Tensor GroupedQueryAttention::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  Saved& inner = saved.child(0);
  {
    const Tensor rotated = saved.tensors.at(0);  // (B, T, A + 2 Dkv), fp32 or half
    // The inner attention's saved qkv again: an activation, as it was when saved (a layer computing
    // in fp32 widens it like any saved half activation).
    Tensor qkv = Tensor::empty({rotated.dim(0), rotated.dim(1), 3 * width_}, rotated.dtype(), MemCategory::Activations);
    if (!measuring(dy))
      expand_kv_heads(rotated.raw(), qkv.raw(), rotated.dim(0) * rotated.dim(1), heads_, kv_heads_, head_dim_,
                      dtype_size(rotated.dtype()));
    inner.tensors.at(0) = qkv;
    saved.tensors.clear();
  }
  const Tensor dqkv = widen(backward_child(attn_, dy, inner, rc));  // (B, T, 3A) fp32, ours to change
  saved.clear();
  const int64_t B = dqkv.dim(0), T = dqkv.dim(1);
  Tensor dpacked = Tensor::empty({B, T, packed_width()}, DType::F32, MemCategory::Workspace);
  if (measuring(dy)) return dpacked;
  rope_apply(dqkv.f32(), B, T, 2 * heads_, head_dim_, 0, inverse_frequencies_, /*inverse=*/true, 3 * width_,
             example_positions(rc, B, T));
  reduce_kv_heads(dqkv.f32(), dpacked.f32(), B * T, heads_, kv_heads_, head_dim_);
  return dpacked;
}

Tensor GroupedQueryAttention::forward_cached(const Tensor& packed, KvCache& cache, int64_t layer) {
  check(packed.ndim() == 3 && packed.dim(0) == 1 && packed.dim(2) == packed_width() && packed.dtype() == DType::F32,
        "grouped attention: expected fp32 (1, T, " + std::to_string(packed_width()) + ") for cached generation, got " +
            packed.shape().str());
  const int64_t T = packed.dim(1);
  Tensor rotated = Tensor::empty(packed.shape(), DType::F32, MemCategory::Workspace);  // (1, T, A + 2 Dkv)
  if (!measuring(packed)) {
    std::copy(packed.f32(), packed.f32() + packed.numel(), rotated.f32());
    // q's H heads and k's Hkv heads are the first columns of each row, at positions past .. past+T-1.
    rope_apply(rotated.f32(), 1, T, heads_ + kv_heads_, head_dim_, cache.length(), inverse_frequencies_, false,
               packed_width());
  }
  return attn_.forward_cached(rotated, cache, layer, kv_heads_);
}

}  // namespace frugal
