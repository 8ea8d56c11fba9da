#pragma once
// LoRA (Hu et al., 2021) on a linear layer: y = base(x) + (alpha / r) * B (A (dropout(x))), with
// A (r, in) and B (out, r) trainable and the base frozen. Only A, B get gradients and optimizer
// state, and the base gets no weight-gradient GEMM (Linear skips it for frozen weights).
// Parameter names are PEFT's adapter keys, e.g.
//   base_model.model.transformer.h.0.attn.c_attn.lora_A.weight  (r, in)
//   base_model.model.transformer.h.0.attn.c_attn.lora_B.weight  (out, r)
// Dropout masks come from the counter-based RNG keyed by (seed, step, layer, element's position in
// the optimizer batch), so a recomputed forward draws the same mask, nothing is saved for it, and
// the mask does not depend on how the batch is split into micro-batches.
#include <string>

#include "nn/layer.h"

namespace frugal {

struct LoraConfig {
  int64_t rank = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  double scale() const { return alpha / static_cast<double>(rank); }
};

class LoraAdapter {
 public:
  // A: Kaiming-uniform (PEFT's default: U(-1/sqrt(in), 1/sqrt(in))) from (seed, name); B: zeros.
  LoraAdapter(const std::string& key_prefix, int64_t in, int64_t out, const LoraConfig& config, uint64_t seed);

  // Without dropout the adapter folds into the base weight: the layer multiplies by W + scale B A
  // (one GEMM, as wide as the base's) instead of adding two skinny rank-r products into y and dx,
  // which cost a pass over y and dx each at memory bandwidth.
  bool folds(const RunContext& rc) const { return config_.dropout == 0 || !rc.training; }

  // Nothing when `folded` (the layer's weight already holds scale B A). Otherwise saves A x_d
  // (rows, r) and adds y (rows, out) += scale * B A x_d.
  void forward(const Tensor& x, const Tensor& y, Saved& saved, const RunContext& rc, bool folded) const;
  // Backward in two parts, so the layer can release x between them (nn/linear.cpp): accumulates dA,
  // dB from x (its last use: dropout may mask it in place) and dy, and returns g = dy B (rows, r) when
  // the layer's unfolded input gradient needs it (folded, W' = W + scale B A carries the adapter's
  // part of dx) ...
  Tensor backward_weights(const Tensor& x, const Tensor& dy, Saved& saved, const RunContext& rc, bool folded);
  // ... and writes the adapter's part of the layer's input gradient: dx (rows, in) = scale g A, masked
  // as the forward's x was (the layer adds its base part on top, so no second rows x in buffer).
  void input_gradient(const Tensor& g, const Tensor& dx, const RunContext& rc) const;

  // On the half units (the layer's x, A and B in one half type, no dropout: computes_in_half):
  // saves h = x A^T (rows, r) and adds y (rows, out, fp32) += scale * h B^T; the layer computed
  // y = x W + b on the half units first. Never folded: a folded half weight would round the small
  // scale B A away.
  bool computes_in_half() const { return config_.dropout == 0; }
  void forward_half(const Tensor& x, const Tensor& y, Saved& saved) const;
  // Accumulates dA = scale g^T x and dB = scale dy^T h from half x, h and dy; returns g = dy B
  // (rows, r, fp32) for input_gradient (no dropout on this path).
  Tensor backward_weights_half(const Tensor& x, const Tensor& dy_half, Saved& saved);

  // W (in, out) or (out, in) += sign * scale * (B A) in that layout: merge (+1) / unmerge (-1).
  void merge_into(const Tensor& weight, bool in_out_layout, float sign) const;
  // folded = weight + scale * (B A), both fp32 of the same shape (folded may be weight).
  void fold_into(const Tensor& weight, bool in_out_layout, const Tensor& folded) const;

  Param& a() { return a_; }
  Param& b() { return b_; }
  const LoraConfig& config() const { return config_; }

 private:
  // x with the dropout mask applied (a new workspace tensor; x itself, masked, when this is its
  // `last_use` and nothing else holds it), or x itself when dropout is off.
  Tensor dropped(const Tensor& x, const RunContext& rc, bool last_use) const;
  // Whether element i of a tensor with `per_sample` elements per sample survives the dropout.
  bool kept(const RunContext& rc, int64_t per_sample, int64_t i, float keep) const;

  LoraConfig config_;
  int64_t in_, out_;
  uint64_t stream_;  // dropout stream of this layer
  Param a_, b_;
};

}  // namespace frugal
