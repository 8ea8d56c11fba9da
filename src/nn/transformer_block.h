#pragma once
// One GPT-2 block, pre-LayerNorm with two residual branches:
//   x2 = x + c_proj(attn(c_attn(ln_1(x))));  y = x2 + mlp.c_proj(gelu(mlp.c_fc(ln_2(x2))))
// Parameter names are HF GPT-2's: h.{i}.ln_1.*, h.{i}.attn.c_attn.*, h.{i}.attn.c_proj.*, h.{i}.ln_2.*,
// h.{i}.mlp.c_fc.*, h.{i}.mlp.c_proj.*, all linear weights in Conv1D (in, out) layout.
#include <functional>

#include "nn/attention.h"
#include "nn/dropout.h"
#include "nn/gelu.h"
#include "nn/layernorm.h"
#include "nn/linear.h"

namespace frugal {

class TransformerBlock : public Layer {
 public:
  TransformerBlock(int index, int64_t dim, int64_t heads, float eps);
  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;  // (B, T, D) -> (B, T, D)
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  // Generation: the same block with the attention against `layer`'s part of a KV cache
  // (CausalSelfAttention::forward_cached): x (1, T, D) fp32 at positions cache.length() ..
  // cache.length()+T-1 -> (1, T, D). Saves nothing.
  Tensor forward_cached(const Tensor& x, KvCache& cache, int64_t layer, const RunContext& rc);
  void collect_params(std::vector<Param*>& out) override;
  std::string kind() const override { return "transformer_block"; }
  // A composite takes half inputs as they are: it calls each child through forward_child and
  // backward_child, which widen for the children that compute in fp32 (nn/half_storage.h).
  bool computes_in(DType half) const override { return true; }

  Linear& c_attn() { return c_attn_; }
  Linear& attn_proj() { return attn_proj_; }
  Linear& c_fc() { return c_fc_; }
  Linear& mlp_proj() { return mlp_proj_; }
  CausalSelfAttention& attention() { return attn_; }
  const CausalSelfAttention& attention() const { return attn_; }
  // The attention kernel and fused-kernel tile (nn/attention.h), e.g. for tests comparing kernels.
  void set_attention_kernel(AttentionKernel kernel) { attn_.set_kernel(kernel); }
  void set_attention_tile(int64_t tile) { attn_.set_tile(tile); }
  // Dropout on both residual branches' outputs (GPT-2's resid_pdrop) while training.
  void set_residual_dropout(float p) {
    attn_dropout_.p = p;
    mlp_dropout_.p = p;
  }
  // Dropout on the attention probabilities (GPT-2's attn_pdrop) while training.
  void set_attention_dropout(float p) { attn_.set_dropout(p); }

 private:
  // The block's forward with `attend` (qkv (B, T, 3D), its Saved) -> (B, T, D) as the attention.
  using Attend = std::function<Tensor(const Tensor&, Saved&)>;
  Tensor run_forward(const Tensor& x, Saved& saved, const RunContext& rc, const Attend& attend);

  // Indices of the sub-layers' Saved children.
  enum Child { kLn1, kCAttn, kAttn, kAttnProj, kLn2, kCFc, kGelu, kMlpProj, kNumChildren };
  LayerNorm ln1_;
  Linear c_attn_;
  CausalSelfAttention attn_;
  Linear attn_proj_;
  LayerNorm ln2_;
  Linear c_fc_;
  Gelu gelu_;
  Linear mlp_proj_;
  DropoutSpec attn_dropout_{0.0f, DropoutSite::AttentionResidual};
  DropoutSpec mlp_dropout_{0.0f, DropoutSite::MlpResidual};
};

}  // namespace frugal
