#include "nn/transformer_block.h"

#include "kernels/convert.h"
#include "kernels/elementwise.h"
#include "nn/half_storage.h"

namespace frugal {

namespace {
std::string prefix(int index, const char* name) { return "h." + std::to_string(index) + "." + name; }
}  // namespace

TransformerBlock::TransformerBlock(int index, int64_t dim, int64_t heads, float eps)
    : ln1_(prefix(index, "ln_1"), dim, eps),
      c_attn_(prefix(index, "attn.c_attn"), dim, 3 * dim, WeightLayout::InOut, true),
      attn_(dim, heads),
      attn_proj_(prefix(index, "attn.c_proj"), dim, dim, WeightLayout::InOut, true),
      ln2_(prefix(index, "ln_2"), dim, eps),
      c_fc_(prefix(index, "mlp.c_fc"), dim, 4 * dim, WeightLayout::InOut, true),
      mlp_proj_(prefix(index, "mlp.c_proj"), 4 * dim, dim, WeightLayout::InOut, true) {}

Tensor TransformerBlock::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  return run_forward(x, saved, rc, [&](const Tensor& qkv, Saved& s) { return forward_child(attn_, qkv, s, rc); });
}

Tensor TransformerBlock::forward_cached(const Tensor& x, KvCache& cache, int64_t layer, const RunContext& rc) {
  Saved discard;
  return run_forward(x, discard, rc,
                     [&](const Tensor& qkv, Saved&) { return attn_.forward_cached(qkv, cache, layer); });
}

Tensor TransformerBlock::run_forward(const Tensor& x, Saved& saved, const RunContext& rc, const Attend& attend) {
  saved.children.resize(kNumChildren);
  auto& s = saved.children;
  Tensor x2;  // (B, T, D)
  {
    Tensor h = forward_child(ln1_, x, s[kLn1], rc);  // (B, T, D)
    h = forward_child(c_attn_, h, s[kCAttn], rc);    // (B, T, 3D)
    h = attend(h, s[kAttn]);                         // (B, T, D)
    h = forward_child(attn_proj_, h, s[kAttnProj], rc);
    dropout_in_place(h, attn_dropout_, rc);  // the branch's own output: masked where it lies
    x2 = residual_add(x, h, rc);
  }
  // One running tensor, so each intermediate is released as soon as the next layer has saved it.
  Tensor h = forward_child(ln2_, x2, s[kLn2], rc);  // (B, T, D)
  h = forward_child(c_fc_, h, s[kCFc], rc);         // (B, T, 4D)
  h = forward_child(gelu_, h, s[kGelu], rc);        // (B, T, 4D)
  h = forward_child(mlp_proj_, h, s[kMlpProj], rc);  // (B, T, D)
  dropout_in_place(h, mlp_dropout_, rc);
  return residual_add(x2, h, rc);
}

Tensor TransformerBlock::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  auto& s = saved.children;
  // Each sub-layer's saved tensors are dropped right after its backward, so activations shrink
  // while activation gradients (workspace) are live.
  auto step = [&](Layer& layer, Child c, const Tensor& g) {
    Tensor out = backward_child(layer, g, s[c], rc);
    s[c].clear();
    return out;
  };
  Tensor dx2;  // (B, T, D): gradient at the first residual's output
  {
    // Through a residual branch's dropout: a masked copy (the unmasked gradient goes on along the
    // residual path).
    Tensor g;  // (B, T, 4D)
    {
      const Tensor branch = mlp_dropout_.active(rc) ? dropout_copy(dy, mlp_dropout_, rc) : dy;  // (B, T, D)
      g = step(mlp_proj_, kMlpProj, branch);  // the masked copy is released here
    }
    g = step(gelu_, kGelu, g);
    g = step(c_fc_, kCFc, g);                  // (B, T, D)
    dx2 = step(ln2_, kLn2, g);
  }
  {
    const Tensor dy32 = widen(dy);  // dy itself when fp32 (as the executor hands it)
    if (!measuring(dy)) add_inplace(dx2.f32(), dy32.f32(), dy.numel());
  }
  round_activation_in_place(dx2, rc);
  Tensor g = step(attn_proj_, kAttnProj, attn_dropout_.active(rc) ? dropout_copy(dx2, attn_dropout_, rc) : dx2);
  g = step(attn_, kAttn, g);                    // (B, T, 3D)
  g = step(c_attn_, kCAttn, g);                 // (B, T, D)
  Tensor dx = step(ln1_, kLn1, g);
  if (!measuring(dy)) add_inplace(dx.f32(), dx2.f32(), dx.numel());
  return dx;
}

void TransformerBlock::collect_params(std::vector<Param*>& out) {
  ln1_.collect_params(out);
  c_attn_.collect_params(out);
  attn_proj_.collect_params(out);
  ln2_.collect_params(out);
  c_fc_.collect_params(out);
  mlp_proj_.collect_params(out);
}

}  // namespace frugal
