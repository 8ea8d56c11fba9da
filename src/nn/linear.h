#pragma once
// Fully connected layer over the last dimension: y = x W + b.
// Two weight layouts, so files from both worlds load without transposes:
//   InOut: W is (in, out) - HF GPT-2 Conv1D;  OutIn: W is (out, in) - torch.nn.Linear, tied LM heads.
#include <atomic>
#include <memory>
#include <string>

#include "core/work_meter.h"
#include "kernels/quantized_matrix.h"
#include "nn/layer.h"
#include "nn/lora.h"

namespace frugal {

enum class WeightLayout { InOut, OutIn };

class Linear : public Layer {
 public:
  // Owns its weight (prefix + ".weight") and, if `bias`, its bias (prefix + ".bias").
  Linear(const std::string& prefix, int64_t in, int64_t out, WeightLayout layout, bool bias);
  // Uses a weight owned elsewhere (GPT-2's LM head is wte); no bias.
  Linear(Param* shared_weight, int64_t in, int64_t out, WeightLayout layout);

  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;    // (..., in) -> (..., out)
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;  // saved: x
  void collect_params(std::vector<Param*>& out) override;
  std::string kind() const override { return "linear"; }
  // With bf16 units (kernels/gemm.h has_half_gemm) and the weight stored in `half` or quantised: x
  // and W (a quantised one tile by tile, dequantised to `half`) go into the GEMMs as they are,
  // accumulated in fp32; an adapter's products too, unless it has dropout (its masks are drawn on
  // fp32 inputs).
  bool computes_in(DType half) const override;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  Param& weight() { return *weight_; }
  Param* bias() { return has_bias_ ? &bias_ : nullptr; }
  WeightLayout layout() const { return layout_; }

  // LoRA: an adapter on this layer (its own base stays as it is; callers freeze it).
  LoraAdapter& attach_lora(const std::string& key_prefix, const LoraConfig& config, uint64_t seed);
  LoraAdapter* lora() { return lora_.get(); }
  // Folds the adapter into the weight (W += scale B A in this layout) and removes it.
  void merge_lora();
  void detach_lora() { lora_.reset(); }

  // Stores a frozen weight in fp16 or bf16 (half its bytes); each forward and backward widens it
  // into an fp32 workspace copy for the GEMM.
  void store_frozen_weight_as(DType dtype);

  // Stores the frozen weight quantised (--base-precision nf4|int8; it must hold W's values, as stored
  // in this layout): the parameter becomes a placeholder (its shape, no memory) and both products
  // dequantise W tile by tile (kernels/quantized_matrix.h). An adapter never folds into it.
  void set_quantized_weight(QuantizedMatrix weight);
  const QuantizedMatrix* quantized_weight() const { return quantized_.get(); }

  // Weight-gradient GEMMs run by all Linear layers (and the tied LM head, nn/lm_head.h) in this
  // process: frozen weights add none.
  static int64_t weight_gradient_gemms() { return weight_gradient_gemms_.load(); }
  static void count_weight_gradient_gemm() { ++weight_gradient_gemms_; }

 private:
  Tensor output_like(const Tensor& x, int64_t last, MemCategory category) const;
  // The layer with half x and W (computes_in): y = x W + b and its backward on half-precision GEMMs.
  Tensor forward_half(const Tensor& x, Saved& saved);
  // The same with a LoRA adapter: y (fp32, rounded by the caller) = x W + b + scale h B^T.
  Tensor forward_half_lora(const Tensor& x, Saved& saved);
  Tensor backward_half(const Tensor& dy, Saved& saved, const RunContext& rc);
  // Backward's products: dW += x^T dy and db += 1^T dy (fp32, or half inputs on the half units) ...
  void weight_products(const Tensor& x, const Tensor& dy);
  void weight_products_half(const Tensor& x, const Tensor& dy_half);
  // ... and dx (half, or fp32 holding an adapter's part) = dy W^T + beta dx on the half units (a
  // quantised weight through `tile`, from quantized_tile).
  void input_gradient_half(DType half, int64_t rows, const Tensor& dy_half, const Tensor& dx, float beta,
                           const Tensor& tile) const;
  // A quantised weight's dequantisation tile in `dtype` (Workspace; the measuring ledger sees it too),
  // or an empty tensor for a plain weight.
  Tensor quantized_tile(DType dtype) const;
  // Drops the saved input x (its last use is behind) and returns its shape.
  Shape release_input(Saved& saved) const;
  // The work meter's counts of backward's products (core/work_meter.h).
  void count_backward_gemms(int64_t rows, bool dx, bool dw, GemmUnits units) const;
  // y (rows, out) = x W + beta y, or dx (rows, in) = dy W^T + beta dx: the fp32 products, against
  // the weight as gemm_weight gives it or the quantised one.
  void product(const Tensor& w32, const float* a, int64_t rows, bool input_gradient, float beta, float* c) const;
  bool folds(const RunContext& rc) const { return lora_ && !quantized_ && lora_->folds(rc); }
  // The weight the GEMMs multiply by, as fp32: the weight itself, or a workspace copy that is
  // widened from a half-precision frozen weight and/or holds W + scale B A of a folded adapter.
  Tensor gemm_weight(bool fold_lora) const;

  int64_t in_, out_;
  WeightLayout layout_;
  Param own_weight_;
  Param* weight_;  // &own_weight_ or a shared parameter
  bool owns_weight_;
  Param bias_;
  bool has_bias_;
  std::string name_;
  std::unique_ptr<LoraAdapter> lora_;
  std::unique_ptr<QuantizedMatrix> quantized_;  // --base-precision nf4|int8
  static std::atomic<int64_t> weight_gradient_gemms_;
};

}  // namespace frugal
