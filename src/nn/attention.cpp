#include "nn/attention.h"

#include "core/error.h"
#include "core/threading.h"
#include "kernels/attention.h"

namespace frugal {

CausalSelfAttention::CausalSelfAttention(int64_t dim, int64_t heads) : dim_(dim), heads_(heads) {
  check(heads > 0 && dim % heads == 0,
        "attention: n_embd " + std::to_string(dim) + " is not divisible by n_head " + std::to_string(heads));
}

Tensor CausalSelfAttention::forward(const Tensor& qkv, Saved& saved, const RunContext& rc) {
  check(qkv.ndim() == 3 && qkv.dim(2) == 3 * dim_, "attention: expected qkv (B, T, " + std::to_string(3 * dim_) +
                                                       "), got " + qkv.shape().str());
  const int64_t B = qkv.dim(0), T = qkv.dim(1);
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
  Tensor dqkv = Tensor::empty(qkv.shape(), DType::F32, MemCategory::Workspace);  // (B, T, 3D)
  Tensor scratch = Tensor::empty({per_thread(T * T)}, DType::F32, MemCategory::Workspace);
  if (measuring(dy)) return dqkv;
  attention_backward(qkv.f32(), att.f32(), dy.f32(), dqkv.f32(), B, T, dim_, heads_, scratch.f32());
  return dqkv;
}

}  // namespace frugal
