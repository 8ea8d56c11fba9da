#include "nn/attention.h"

#include "core/error.h"
#include "core/threading.h"
#include "kernels/attention.h"
#include "kernels/convert.h"
#include "kernels/gemm.h"

namespace frugal {

CausalSelfAttention::CausalSelfAttention(int64_t dim, int64_t heads) : dim_(dim), heads_(heads) {
  check(heads > 0 && dim % heads == 0,
        "attention: n_embd " + std::to_string(dim) + " is not divisible by n_head " + std::to_string(heads));
}

bool CausalSelfAttention::computes_in(DType half) const { return has_half_gemm(half); }

Tensor CausalSelfAttention::forward(const Tensor& qkv, Saved& saved, const RunContext& rc) {
  check(qkv.ndim() == 3 && qkv.dim(2) == 3 * dim_, "attention: expected qkv (B, T, " + std::to_string(3 * dim_) +
                                                       "), got " + qkv.shape().str());
  const int64_t B = qkv.dim(0), T = qkv.dim(1);
  if (qkv.dtype() != DType::F32) {  // half qkv (computes_in): half products, probabilities and output
    Tensor y = Tensor::empty({B, T, dim_}, qkv.dtype(), MemCategory::Activations);        // (B, T, D)
    Tensor att = Tensor::empty({B, heads_, T, T}, qkv.dtype(), MemCategory::Activations);  // (B, H, T, T)
    Tensor scores = Tensor::empty({heads_, T, T}, DType::F32, MemCategory::Workspace);    // (H, T, T)
    saved.tensors = {qkv, att};
    if (measuring(qkv)) return y;
    attention_forward_half(qkv.dtype(), qkv.u16(), y.u16(), att.u16(), scores.f32(), B, T, dim_, heads_);
    return y;
  }
  Tensor y = Tensor::empty({B, T, dim_}, DType::F32, MemCategory::Activations);             // (B, T, D)
  Tensor att = Tensor::empty({B, heads_, T, T}, DType::F32, MemCategory::Activations);      // (B, H, T, T)
  saved.tensors = {qkv, att};
  if (measuring(qkv)) return y;
  attention_forward(qkv.f32(), y.f32(), att.f32(), B, T, dim_, heads_);
  return y;
}

Tensor CausalSelfAttention::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
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
                            scores_half.u16(), rows.f32());
    return dqkv;
  }
  Tensor dqkv = Tensor::empty(qkv.shape(), DType::F32, MemCategory::Workspace);  // (B, T, 3D)
  Tensor scratch = Tensor::empty({per_thread(T * T)}, DType::F32, MemCategory::Workspace);
  if (measuring(dy)) return dqkv;
  attention_backward(qkv.f32(), att.f32(), dy.f32(), dqkv.f32(), B, T, dim_, heads_, scratch.f32());
  return dqkv;
}

}  // namespace frugal
