#pragma once
// One Llama decoder layer (issue 20), pre-RMSNorm with two residual branches:
//   x2 = x + o_proj(attn(q_proj(h), k_proj(h), v_proj(h))),  h = input_layernorm(x)
//   y  = x2 + down_proj(silu(gate_proj(h2)) * up_proj(h2)),  h2 = post_attention_layernorm(x2)
// with rotary positions on q and k and grouped-query attention (nn/grouped_attention.h). Parameter
// names are Hugging Face's, model.layers.{i}.self_attn.q_proj.weight and so on, weights in
// torch.nn.Linear's (out, in) layout; q/k/v biases for Qwen2, all four for attention_bias. Qwen3
// normalises each query and key head before the rotation (self_attn.q_norm / k_norm: RMSNorm over
// the head's head_dim values, one gain vector shared by all heads).
#include <functional>

#include "nn/grouped_attention.h"
#include "nn/linear.h"
#include "nn/rmsnorm.h"
#include "nn/swiglu.h"

namespace frugal {

struct LlamaBlockShape {
  int64_t dim = 0, heads = 0, kv_heads = 0, intermediate = 0;
  int64_t head_dim = 0;  // 0: dim / heads
  float eps = 1e-5f;
  std::vector<float> rope_frequencies;  // kernels/rope.h, head_dim / 2 of them
  bool qkv_bias = false, o_bias = false, mlp_bias = false;
  bool qk_norm = false;  // Qwen3's q_norm and k_norm

  int64_t head_width() const { return head_dim > 0 ? head_dim : dim / heads; }
};

class LlamaBlock : public Layer {
 public:
  LlamaBlock(int index, const LlamaBlockShape& shape);
  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;  // (B, T, D) -> (B, T, D)
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  // Generation: x (1, T, D) fp32 at positions cache.length() .. +T-1, attention against `layer`'s
  // part of the KV cache (GroupedQueryAttention::forward_cached). Saves nothing.
  Tensor forward_cached(const Tensor& x, KvCache& cache, int64_t layer, const RunContext& rc);
  void collect_params(std::vector<Param*>& out) override;
  std::string kind() const override { return "llama_block"; }
  // A composite: children through forward_child / backward_child (nn/half_storage.h).
  bool computes_in(DType half) const override { return true; }

  // The linear layers by their Hugging Face module names (q_proj, ..., down_proj), for LoRA.
  std::vector<std::pair<std::string, Linear*>> linears();
  GroupedQueryAttention& attention() { return attn_; }
  const GroupedQueryAttention& attention() const { return attn_; }

 private:
  using Attend = std::function<Tensor(const Tensor&, Saved&)>;  // packed (B, T, A + 2 Dkv) -> (B, T, A)
  Tensor run_forward(const Tensor& x, Saved& saved, const RunContext& rc, const Attend& attend);
  // A projection of the normalised input h; q and k under Qwen3 followed by their per-head norm.
  struct Projection {
    Linear* linear;
    int child;
    RmsNorm* head_norm = nullptr;
    int norm_child = -1;
  };
  Tensor forward_projection(const Projection& p, const Tensor& h, Saved& saved, const RunContext& rc);
  // (B, T, heads hd) seen as (B, T, heads, hd): the rows a per-head norm normalises.
  Tensor head_rows(const Tensor& t) const { return t.view({t.dim(0), t.dim(1), t.dim(2) / head_dim_, head_dim_}); }
  // dL/dh of a normalised input h that fed several projections: their input gradients summed (fp32).
  Tensor backward_projections(const std::vector<Projection>& projections, const Tensor& dpacked, Saved& saved,
                              const RunContext& rc);
  std::vector<Projection> attention_projections();

  enum Child { kNorm1, kQ, kK, kV, kAttn, kO, kNorm2, kGate, kUp, kSwiGlu, kDown, kQNorm, kKNorm, kNumChildren };
  int64_t head_dim_;
  RmsNorm input_norm_;
  Linear q_proj_, k_proj_, v_proj_;
  std::unique_ptr<RmsNorm> q_norm_, k_norm_;  // Qwen3 only
  GroupedQueryAttention attn_;
  Linear o_proj_;
  RmsNorm post_attention_norm_;
  Linear gate_proj_, up_proj_;
  SwiGlu swiglu_;
  Linear down_proj_;
};

}  // namespace frugal
