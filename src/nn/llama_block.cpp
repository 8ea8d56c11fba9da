#include "nn/llama_block.h"

#include "kernels/columns.h"
#include "kernels/convert.h"
#include "kernels/elementwise.h"
#include "nn/half_storage.h"

namespace frugal {

namespace {
std::string prefix(int index, const char* name) { return "model.layers." + std::to_string(index) + "." + name; }
}  // namespace

LlamaBlock::LlamaBlock(int index, const LlamaBlockShape& s)
    : head_dim_(s.head_width()),
      input_norm_(prefix(index, "input_layernorm"), s.dim, s.eps),
      q_proj_(prefix(index, "self_attn.q_proj"), s.dim, s.heads * head_dim_, WeightLayout::OutIn, s.qkv_bias),
      k_proj_(prefix(index, "self_attn.k_proj"), s.dim, s.kv_heads * head_dim_, WeightLayout::OutIn, s.qkv_bias),
      v_proj_(prefix(index, "self_attn.v_proj"), s.dim, s.kv_heads * head_dim_, WeightLayout::OutIn, s.qkv_bias),
      q_norm_(s.qk_norm ? std::make_unique<RmsNorm>(prefix(index, "self_attn.q_norm"), head_dim_, s.eps) : nullptr),
      k_norm_(s.qk_norm ? std::make_unique<RmsNorm>(prefix(index, "self_attn.k_norm"), head_dim_, s.eps) : nullptr),
      attn_(s.heads, s.kv_heads, head_dim_, s.rope_frequencies),
      o_proj_(prefix(index, "self_attn.o_proj"), s.heads * head_dim_, s.dim, WeightLayout::OutIn, s.o_bias),
      post_attention_norm_(prefix(index, "post_attention_layernorm"), s.dim, s.eps),
      gate_proj_(prefix(index, "mlp.gate_proj"), s.dim, s.intermediate, WeightLayout::OutIn, s.mlp_bias),
      up_proj_(prefix(index, "mlp.up_proj"), s.dim, s.intermediate, WeightLayout::OutIn, s.mlp_bias),
      down_proj_(prefix(index, "mlp.down_proj"), s.intermediate, s.dim, WeightLayout::OutIn, s.mlp_bias) {}

Tensor LlamaBlock::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  return run_forward(x, saved, rc, [&](const Tensor& packed, Saved& s) { return forward_child(attn_, packed, s, rc); });
}

Tensor LlamaBlock::forward_cached(const Tensor& x, KvCache& cache, int64_t layer, const RunContext& rc) {
  Saved discard;
  return run_forward(x, discard, rc,
                     [&](const Tensor& packed, Saved&) { return attn_.forward_cached(packed, cache, layer); });
}

std::vector<LlamaBlock::Projection> LlamaBlock::attention_projections() {
  return {{&q_proj_, kQ, q_norm_.get(), kQNorm}, {&k_proj_, kK, k_norm_.get(), kKNorm}, {&v_proj_, kV}};
}

Tensor LlamaBlock::forward_projection(const Projection& p, const Tensor& h, Saved& saved, const RunContext& rc) {
  const Tensor y = forward_child(*p.linear, h, saved.children[p.child], rc);  // (B, T, heads hd)
  if (!p.head_norm) return y;
  // Each head's hd values normalised on their own.
  return forward_child(*p.head_norm, head_rows(y), saved.children[p.norm_child], rc).view(y.shape());
}

Tensor LlamaBlock::run_forward(const Tensor& x, Saved& saved, const RunContext& rc, const Attend& attend) {
  saved.children.resize(kNumChildren);
  auto& s = saved.children;
  Tensor x2;  // (B, T, D)
  {
    const Tensor h = forward_child(input_norm_, x, s[kNorm1], rc);  // (B, T, D)
    std::vector<Tensor> projected;
    for (const Projection& p : attention_projections()) projected.push_back(forward_projection(p, h, saved, rc));
    Tensor a = concat_last(projected, MemCategory::Activations);  // (B, T, A + 2 Dkv)
    projected.clear();
    a = attend(a, s[kAttn]);  // (B, T, A)
    a = forward_child(o_proj_, a, s[kO], rc);
    x2 = residual_add(x, a, rc);
  }
  const Tensor h = forward_child(post_attention_norm_, x2, s[kNorm2], rc);  // (B, T, D)
  Tensor m = concat_last({forward_child(gate_proj_, h, s[kGate], rc), forward_child(up_proj_, h, s[kUp], rc)},
                         MemCategory::Activations);  // (B, T, 2F)
  m = forward_child(swiglu_, m, s[kSwiGlu], rc);     // (B, T, F)
  m = forward_child(down_proj_, m, s[kDown], rc);    // (B, T, D)
  return residual_add(x2, m, rc);
}

Tensor LlamaBlock::backward_projections(const std::vector<Projection>& projections, const Tensor& dpacked,
                                        Saved& saved, const RunContext& rc) {
  std::vector<int64_t> widths;
  for (const Projection& p : projections) widths.push_back(p.linear->out_features());
  std::vector<Tensor> parts = split_last(dpacked, widths, MemCategory::Workspace);
  Tensor sum;  // (B, T, D) fp32
  for (size_t i = 0; i < projections.size(); ++i) {
    const Projection& p = projections[i];
    if (p.head_norm) {  // through the per-head norm first
      const Tensor dnormed = backward_child(*p.head_norm, head_rows(parts[i]), saved.children[p.norm_child], rc);
      parts[i] = dnormed.view(parts[i].shape());
      saved.children[p.norm_child].clear();
    }
    const Tensor dh = widen(backward_child(*p.linear, parts[i], saved.children[p.child], rc));  // fp32 (ours)
    saved.children[p.child].clear();
    parts[i] = Tensor();  // this projection's output gradient is no longer needed
    if (i == 0) sum = dh;
    else if (!measuring(dpacked)) add_inplace(sum.f32(), dh.f32(), sum.numel());
  }
  round_activation_in_place(sum, rc);  // as one layer's input gradient would be
  return sum;
}

Tensor LlamaBlock::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  auto& s = saved.children;
  auto step = [&](Layer& layer, Child c, const Tensor& g) {
    Tensor out = backward_child(layer, g, s[c], rc);
    s[c].clear();
    return out;
  };
  Tensor dx2;  // (B, T, D): gradient at the first residual's output
  {
    Tensor g = step(down_proj_, kDown, dy);  // (B, T, F)
    g = step(swiglu_, kSwiGlu, g);            // (B, T, 2F)
    g = backward_projections({{&gate_proj_, kGate}, {&up_proj_, kUp}}, g, saved, rc);  // (B, T, D)
    dx2 = step(post_attention_norm_, kNorm2, g);
  }
  {
    const Tensor dy32 = widen(dy);
    if (!measuring(dy)) add_inplace(dx2.f32(), dy32.f32(), dy.numel());
  }
  round_activation_in_place(dx2, rc);
  Tensor g = step(o_proj_, kO, dx2);  // (B, T, A)
  g = step(attn_, kAttn, g);           // (B, T, A + 2 Dkv)
  g = backward_projections(attention_projections(), g, saved, rc);  // (B, T, D)
  Tensor dx = step(input_norm_, kNorm1, g);
  if (!measuring(dy)) add_inplace(dx.f32(), dx2.f32(), dx.numel());
  return dx;
}

void LlamaBlock::collect_params(std::vector<Param*>& out) {
  input_norm_.collect_params(out);
  for (Linear* linear : {&q_proj_, &k_proj_, &v_proj_, &o_proj_}) linear->collect_params(out);
  if (q_norm_) {  // Hugging Face's module order: after o_proj
    q_norm_->collect_params(out);
    k_norm_->collect_params(out);
  }
  post_attention_norm_.collect_params(out);
  for (Linear* linear : {&gate_proj_, &up_proj_, &down_proj_}) linear->collect_params(out);
}

std::vector<std::pair<std::string, Linear*>> LlamaBlock::linears() {
  return {{"self_attn.q_proj", &q_proj_}, {"self_attn.k_proj", &k_proj_}, {"self_attn.v_proj", &v_proj_},
          {"self_attn.o_proj", &o_proj_}, {"mlp.gate_proj", &gate_proj_}, {"mlp.up_proj", &up_proj_},
          {"mlp.down_proj", &down_proj_}};
}

}  // namespace frugal
