#include "nn/attention.h"

#include "core/error.h"
#include "core/threading.h"
#include "core/work_meter.h"
#include "kernels/attention.h"
#include "kernels/attention_cached.h"
#include "kernels/convert.h"
#include "kernels/flash_attention.h"
#include "kernels/gemm.h"
#include "nn/half_storage.h"

namespace frugal {

namespace {
// Auto's rule (measured, docs/DESIGN-NOTES.md "Attention kernels"): the materialising kernel up to
// this many positions, where it is 7-30% faster (the fused kernel recomputes the scores in backward:
// 7 tile products for 6) and its (T, T) probabilities are small; the fused kernel above: at 512
// positions the two are within 5%, at 1024 the fused one is 6-11% faster and saves B H T^2 values.
constexpr int64_t kMaterializedMaxT = 384;
}  // namespace

CausalSelfAttention::CausalSelfAttention(int64_t dim, int64_t heads)
    : dim_(dim), heads_(heads), tile_(kFlashDefaultTile) {
  check(heads > 0 && dim % heads == 0,
        "attention: n_embd " + std::to_string(dim) + " is not divisible by n_head " + std::to_string(heads));
}

bool CausalSelfAttention::computes_in(DType half) const {
  return kernel_ != AttentionKernel::Materialized || has_half_gemm(half);
}

void CausalSelfAttention::set_tile(int64_t tile) {
  check(tile >= 1 && tile <= kFlashMaxTile, "attention: tile size " + std::to_string(tile) + " is not in 1.." +
                                                std::to_string(kFlashMaxTile));
  tile_ = tile;
}

AttentionKernel CausalSelfAttention::kernel_for(int64_t T, DType dtype) const {
  if (kernel_ != AttentionKernel::Auto) return kernel_;
  return T <= kMaterializedMaxT ? AttentionKernel::Materialized : AttentionKernel::Flash;
}

AttentionKernel CausalSelfAttention::kernel_in(const RunContext& rc, int64_t T, DType dtype) const {
  if (rc.positions && kernel_ == AttentionKernel::Auto) return AttentionKernel::Flash;  // only it masks examples
  return kernel_for(T, dtype);
}

void CausalSelfAttention::count_products(int64_t B, int64_t T, DType type, bool backward, bool flash) const {
  // Per (batch, head): Q K^T and P V forward; backward dP, dV, dQ, dK, and the fused kernel also
  // recomputes Q K^T. The fused kernel skips the tiles above the diagonal (about half).
  const int64_t products = backward ? (flash ? 5 : 4) : 2;
  const int64_t count = B * heads_ * products, hd = dim_ / heads_;
  const int64_t keys = flash ? (T + tile_) / 2 : T;
  const GemmUnits units = is_half(type) && has_half_gemm(type) && !flash ? GemmUnits::Half : GemmUnits::F32;
  count_gemm(T, keys, hd, units, count);
}

Tensor CausalSelfAttention::forward(const Tensor& qkv, Saved& saved, const RunContext& rc) {
  check(qkv.ndim() == 3 && qkv.dim(2) == 3 * dim_, "attention: expected qkv (B, T, " + std::to_string(3 * dim_) +
                                                       "), got " + qkv.shape().str());
  const bool flash = kernel_in(rc, qkv.dim(1), qkv.dtype()) == AttentionKernel::Flash;
  count_products(qkv.dim(0), qkv.dim(1), qkv.dtype(), /*backward=*/false, flash);
  DropoutKey key;
  const DropoutKey* drop = dropout_key(rc, qkv.dim(1), key);
  if (flash)
    return forward_flash(qkv, saved, drop, example_positions(rc, qkv));
  check(!rc.positions, "attention: rows that hold several examples (packing) need the fused kernel, not --attention "
                       "materialized");
  if (is_half(qkv.dtype()) && !has_half_gemm(qkv.dtype())) return forward_widened(qkv, saved, rc, drop);
  return forward_materialized(qkv, saved, drop);
}

const int32_t* CausalSelfAttention::example_positions(const RunContext& rc, const Tensor& qkv) {
  if (!rc.positions) return nullptr;
  check(rc.positions->ndim() == 2 && rc.positions->dim(0) == qkv.dim(0) && rc.positions->dim(1) == qkv.dim(1),
        "attention: positions " + rc.positions->shape().str() + " do not match qkv " + qkv.shape().str());
  return rc.positions->has_data() ? rc.positions->i32() : nullptr;
}

const DropoutKey* CausalSelfAttention::dropout_key(const RunContext& rc, int64_t T, DropoutKey& key) const {
  if (!dropout_.active(rc)) return nullptr;
  key = dropout_.key(rc, heads_ * T * T);  // (H, T, T) probabilities per sample
  return &key;
}

Tensor CausalSelfAttention::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  const Tensor& qkv = saved.tensors.at(0);
  count_products(qkv.dim(0), qkv.dim(1), qkv.dtype(), /*backward=*/true, !saved.stats.empty());
  DropoutKey key;
  const DropoutKey* drop = dropout_key(rc, saved.tensors.at(0).dim(1), key);
  // Only the fused kernel keeps statistics (the log-sum-exps).
  if (!saved.stats.empty()) return backward_flash(dy, saved, drop, example_positions(rc, saved.tensors.at(0)));
  const DType type = saved.tensors.at(0).dtype();
  if (is_half(type) && !has_half_gemm(type)) return backward_widened(dy, saved, rc, drop);
  return backward_materialized(dy, saved, drop);
}

Tensor CausalSelfAttention::forward_cached(const Tensor& qkv, KvCache& cache, int64_t layer, int64_t kv_heads) {
  if (kv_heads == 0) kv_heads = heads_;
  const int64_t width = dim_ + 2 * kv_heads * (dim_ / heads_);  // q, then k and v of the shared heads
  check(qkv.ndim() == 3 && qkv.dim(0) == 1 && qkv.dim(2) == width,
        "attention: expected qkv (1, T, " + std::to_string(width) + ") for cached generation, got " + qkv.shape().str());
  check(qkv.dtype() == DType::F32,
        "attention: cached generation computes in fp32, got a " + dtype_name(qkv.dtype()) + " qkv");
  const Tensor keys = cache.keys(layer), values = cache.values(layer);  // (Hkv, capacity, hd)
  check(keys.dim(0) == kv_heads && keys.dim(2) * heads_ == dim_,
        "attention: the kv cache's heads do not match the layer");
  const int64_t T = qkv.dim(1), past = cache.length();
  check(past + T <= cache.capacity(), "attention: " + std::to_string(past + T) +
                                          " positions exceed the kv cache's capacity " +
                                          std::to_string(cache.capacity()));
  Tensor y = Tensor::empty({1, T, dim_}, DType::F32, MemCategory::Activations);  // (1, T, D)
  Tensor scratch = Tensor::empty({per_thread(attention_cached_scratch(T, past))}, DType::F32, MemCategory::Workspace);
  if (measuring(qkv)) return y;
  attention_cached_forward(qkv.f32(), keys.f32(), values.f32(), y.f32(), T, past, cache.capacity(), dim_, heads_,
                           kv_heads, scratch.f32());
  return y;
}

Tensor CausalSelfAttention::forward_flash(const Tensor& qkv, Saved& saved, const DropoutKey* drop,
                                          const int32_t* positions) {
  const int64_t B = qkv.dim(0), T = qkv.dim(1);
  Tensor y = Tensor::empty({B, T, dim_}, qkv.dtype(), MemCategory::Activations);         // (B, T, D)
  Tensor lse = Tensor::empty({B, heads_, T}, DType::F32, MemCategory::Activations);      // (B, H, T)
  Tensor scratch = Tensor::empty({per_thread(flash_attention_forward_scratch(T, dim_ / heads_, tile_))}, DType::F32,
                                 MemCategory::Workspace);
  // y is also the next layer's saved input: one buffer (under half precision one half copy, shared
  // through the pass's HalfCache or y being half already).
  saved.tensors = {qkv, y};
  saved.stats = {lse};
  if (measuring(qkv)) return y;
  flash_attention_forward(qkv.dtype(), qkv.raw(), y.raw(), lse.f32(), B, T, dim_, heads_, tile_, scratch.f32(), drop,
                          positions);
  return y;
}

Tensor CausalSelfAttention::backward_flash(const Tensor& dy, Saved& saved, const DropoutKey* drop,
                                           const int32_t* positions) {
  const Tensor& qkv = saved.tensors.at(0);
  const Tensor& y = saved.tensors.at(1);
  const Tensor& lse = saved.stats.at(0);
  const DType type = qkv.dtype();
  const int64_t B = qkv.dim(0), T = qkv.dim(1);
  // dy in the kernel's type: half already, or fp32 holding half values (its half copy is exact).
  const Tensor dy_in = dy.dtype() == type ? dy
                       : type == DType::F32 ? widen(dy)
                                            : round_to(dy, type, MemCategory::Workspace);  // (B, T, D)
  // The input gradient in qkv's type: under half precision handed on in the half type, like a
  // layer on the half units does, to c_attn.
  Tensor dqkv = Tensor::empty(qkv.shape(), type, MemCategory::Workspace);  // (B, T, 3D)
  Tensor scratch = Tensor::empty({per_thread(flash_attention_backward_scratch(T, dim_ / heads_, tile_, drop != nullptr))},
                                 DType::F32, MemCategory::Workspace);
  if (measuring(dy)) return dqkv;
  flash_attention_backward(type, qkv.raw(), y.raw(), lse.f32(), dy_in.raw(), dqkv.raw(), B, T, dim_, heads_, tile_,
                           scratch.f32(), drop, positions);
  return dqkv;
}

// Half qkv under Auto at small T on a CPU without half GEMM units: what forward_child does for a
// layer computing in fp32 (fp32 workspace copy in, fp32 probabilities that forward_child stores as
// half copies), so these runs keep the materialising kernel's speed.
Tensor CausalSelfAttention::forward_widened(const Tensor& qkv, Saved& saved, const RunContext& rc,
                                            const DropoutKey* drop) {
  return forward_materialized(widen_activation(qkv, rc), saved, drop);
}

// Its backward: the saved half tensors widened, and the input gradient handed on in the half type,
// as from the layer's other half paths.
Tensor CausalSelfAttention::backward_widened(const Tensor& dy, Saved& saved, const RunContext& rc,
                                             const DropoutKey* drop) {
  const DType half = saved.tensors.at(0).dtype();
  for (Tensor& t : saved.tensors) t = widen_activation(t, rc);
  const Tensor dqkv = backward_materialized(is_half(dy.dtype()) ? widen(dy) : dy, saved, drop);  // (B, T, 3D) fp32
  return round_to(dqkv, half, MemCategory::Workspace);
}

Tensor CausalSelfAttention::forward_materialized(const Tensor& qkv, Saved& saved, const DropoutKey* drop) {
  const int64_t B = qkv.dim(0), T = qkv.dim(1);
  if (qkv.dtype() != DType::F32) {  // half qkv (computes_in): half products, probabilities and output
    Tensor y = Tensor::empty({B, T, dim_}, qkv.dtype(), MemCategory::Activations);        // (B, T, D)
    Tensor att = Tensor::empty({B, heads_, T, T}, qkv.dtype(), MemCategory::Activations);  // (B, H, T, T)
    Tensor scores = Tensor::empty({heads_, T, T}, DType::F32, MemCategory::Workspace);    // (H, T, T)
    saved.tensors = {qkv, att};
    if (measuring(qkv)) return y;
    attention_forward_half(qkv.dtype(), qkv.u16(), y.u16(), att.u16(), scores.f32(), B, T, dim_, heads_, drop);
    return y;
  }
  Tensor y = Tensor::empty({B, T, dim_}, DType::F32, MemCategory::Activations);             // (B, T, D)
  Tensor att = Tensor::empty({B, heads_, T, T}, DType::F32, MemCategory::Activations);      // (B, H, T, T)
  saved.tensors = {qkv, att};
  // With dropout: P V takes a dropped copy of a block of rows per thread (att keeps P itself).
  const Tensor dropped =
      drop ? Tensor::empty({per_thread(kAttentionDropoutRows * T)}, DType::F32, MemCategory::Workspace) : Tensor();
  if (measuring(qkv)) return y;
  attention_forward(qkv.f32(), y.f32(), att.f32(), B, T, dim_, heads_, drop, drop ? dropped.f32() : nullptr);
  return y;
}

Tensor CausalSelfAttention::backward_materialized(const Tensor& dy, Saved& saved, const DropoutKey* drop) {
  const Tensor& qkv = saved.tensors.at(0);
  const Tensor& att = saved.tensors.at(1);
  const int64_t B = qkv.dim(0), T = qkv.dim(1);
  if (qkv.dtype() != DType::F32) {
    const DType half = qkv.dtype();
    // The input gradient in the half type: activation gradients hold half values, and the layer
    // before (c_attn) multiplies them on the half units.
    Tensor dqkv = Tensor::empty(qkv.shape(), half, MemCategory::Workspace);  // (B, T, 3D)
    // dy: half already, or fp32 holding half values (its half copy is exact).
    const Tensor dy_half = dy.dtype() == half ? dy : round_to(dy, half, MemCategory::Workspace);  // (B, T, D)
    Tensor scores = Tensor::empty({heads_, T, T}, DType::F32, MemCategory::Workspace);  // (H, T, T)
    Tensor scores_half = Tensor::empty({heads_, T, T}, half, MemCategory::Workspace);
    Tensor rows = Tensor::empty({per_thread(T)}, DType::F32, MemCategory::Workspace);
    if (measuring(dy)) return dqkv;
    attention_backward_half(half, qkv.u16(), att.u16(), dy_half.u16(), dqkv.u16(), B, T, dim_, heads_, scores.f32(),
                            scores_half.u16(), rows.f32(), drop);
    return dqkv;
  }
  Tensor dqkv = Tensor::empty(qkv.shape(), DType::F32, MemCategory::Workspace);  // (B, T, 3D)
  Tensor scratch = Tensor::empty({per_thread(T * T)}, DType::F32, MemCategory::Workspace);
  if (measuring(dy)) return dqkv;
  attention_backward(qkv.f32(), att.f32(), dy.f32(), dqkv.f32(), B, T, dim_, heads_, scratch.f32(), drop);
  return dqkv;
}

}  // namespace frugal
