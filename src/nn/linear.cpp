#include "nn/linear.h"

#include <algorithm>

#include "core/error.h"
#include "core/work_meter.h"
#include "kernels/convert.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"

namespace frugal {

std::atomic<int64_t> Linear::weight_gradient_gemms_{0};

Linear::Linear(const std::string& prefix, int64_t in, int64_t out, WeightLayout layout, bool bias)
    : in_(in), out_(out), layout_(layout), weight_(&own_weight_), owns_weight_(true), has_bias_(bias), name_(prefix) {
  const Shape w_shape = layout == WeightLayout::InOut ? Shape{in, out} : Shape{out, in};
  own_weight_ = {prefix + ".weight", Tensor::zeros(w_shape, DType::F32, MemCategory::Params), {}, true};
  if (bias) bias_ = {prefix + ".bias", Tensor::zeros({out}, DType::F32, MemCategory::Params), {}, true};
}

Linear::Linear(Param* shared_weight, int64_t in, int64_t out, WeightLayout layout)
    : in_(in), out_(out), layout_(layout), weight_(shared_weight), owns_weight_(false), has_bias_(false),
      name_(shared_weight->name) {
  const Shape expected = layout == WeightLayout::InOut ? Shape{in, out} : Shape{out, in};
  check(shared_weight->value.shape() == expected, "linear " + name_ + ": shared weight has the wrong shape");
}

Tensor Linear::output_like(const Tensor& x, int64_t last, MemCategory category) const {
  return Tensor::empty(x.shape().with(-1, last), DType::F32, category);
}

bool Linear::computes_in(DType half) const {
  if (!has_half_gemm(half) || (lora_ && !lora_->computes_in_half())) return false;
  return quantized_ || weight_->value.dtype() == half;  // a quantised weight's tiles are dequantised to `half`
}

Tensor Linear::quantized_tile(DType dtype) const {
  if (!quantized_) return Tensor();
  const int64_t values = dtype == DType::F32 ? quantized_gemm_tile_floats(*quantized_) : quantized_gemm_half_tile_values(*quantized_);
  return Tensor::empty({values}, dtype, MemCategory::Workspace);
}

Tensor Linear::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  check(x.ndim() >= 1 && x.dim(-1) == in_, "linear " + name_ + ": expected input (..., " + std::to_string(in_) +
                                               "), got " + x.shape().str());
  if (x.dtype() != DType::F32) {
    check(computes_in(x.dtype()), "linear " + name_ + ": cannot multiply a " + dtype_name(x.dtype()) + " input here");
    return lora_ ? forward_half_lora(x, saved) : forward_half(x, saved);
  }
  Tensor y = output_like(x, out_, MemCategory::Activations);  // (..., out)
  saved.tensors = {x};
  count_gemm(x.numel() / in_, out_, in_, GemmUnits::F32);
  const bool folded = folds(rc);
  const Tensor w32 = gemm_weight(folded);
  const Tensor bias = has_bias_ ? widen(bias_.value) : Tensor();  // (out) fp32
  const Tensor tile = quantized_tile(DType::F32);  // a quantised weight's dequantised rows
  if (!measuring(x)) {
    const int64_t rows = x.numel() / in_;
    float beta = 0.0f;
    if (has_bias_) {
      broadcast_rows(bias.f32(), y.f32(), rows, out_);
      beta = 1.0f;
    }
    if (quantized_) {
      quantized_gemm(x.f32(), rows, *quantized_, layout_ == WeightLayout::OutIn, beta, y.f32(), tile.f32());
    } else {
      const float* w = w32.f32();
      if (rows == 1)  // one row (generation's per-token step): OpenBLAS's GEMV, 1.5-8x its one-row GEMM
        layout_ == WeightLayout::InOut ? gemv(true, in_, out_, 1.0f, w, out_, x.f32(), beta, y.f32())   // W^T x
                                       : gemv(false, out_, in_, 1.0f, w, in_, x.f32(), beta, y.f32());  // W x
      else
        product(w32, x.f32(), rows, false, beta, y.f32());
    }
  }
  if (lora_) lora_->forward(x, y, saved, rc, folded);
  return y;
}

Tensor Linear::forward_half(const Tensor& x, Saved& saved) {
  // (..., out) in the half type, rounded from the fp32 sums (bias added before rounding)
  Tensor y = Tensor::empty(x.shape().with(-1, out_), x.dtype(), MemCategory::Activations);
  saved.tensors = {x};  // (..., in) half: stored as it is
  const Tensor bias = has_bias_ ? widen(bias_.value) : Tensor();
  count_gemm(x.numel() / in_, out_, in_, GemmUnits::Half);
  const Tensor tile = quantized_tile(x.dtype());
  if (measuring(x)) return y;
  const bool in_out = layout_ == WeightLayout::InOut;
  if (quantized_) {
    quantized_gemm_half_out(x.dtype(), x.u16(), x.numel() / in_, *quantized_, !in_out, has_bias_ ? bias.f32() : nullptr,
                            y.u16(), tile.u16());
    return y;
  }
  gemm_half_out(x.dtype(), false, !in_out, x.numel() / in_, out_, in_, 1.0f, x.u16(), in_, weight_->value.u16(),
                in_out ? out_ : in_, has_bias_ ? bias.f32() : nullptr, y.u16(), out_);
  return y;
}

Tensor Linear::forward_half_lora(const Tensor& x, Saved& saved) {
  // fp32: the base's and the adapter's parts are added before the one rounding to the half type.
  Tensor y = output_like(x, out_, MemCategory::Activations);  // (..., out)
  saved.tensors = {x};  // (..., in) half; the adapter adds h
  const Tensor bias = has_bias_ ? widen(bias_.value) : Tensor();
  const int64_t rows = x.numel() / in_;
  const bool in_out = layout_ == WeightLayout::InOut;
  count_gemm(rows, out_, in_, GemmUnits::Half);
  const Tensor tile = quantized_tile(x.dtype());
  if (!measuring(x)) {
    if (has_bias_) broadcast_rows(bias.f32(), y.f32(), rows, out_);
    const float beta = has_bias_ ? 1.0f : 0.0f;
    if (quantized_)
      quantized_gemm_half(x.dtype(), x.u16(), rows, *quantized_, !in_out, beta, y.f32(), tile.u16());
    else
      gemm_half(x.dtype(), false, !in_out, rows, out_, in_, 1.0f, x.u16(), in_, weight_->value.u16(), in_out ? out_ : in_,
                beta, y.f32(), out_);
  }
  lora_->forward_half(x, y, saved);
  return y;
}

// Both backward paths run the weight's products first (the adapter's too), then release the saved
// input before dx is allocated: the layer never holds x and dx at once, so a caller's extra gradient
// buffer (a residual dropout's masked copy of dy) costs no peak memory.
Tensor Linear::backward_half(const Tensor& dy, Saved& saved, const RunContext& rc) {
  const DType half = saved.tensors.at(0).dtype();
  const int64_t rows = saved.tensors.at(0).numel() / in_;
  // dy: half already (from a layer that computes in half), or fp32 holding half values (activation
  // gradients are rounded), whose half copy is exact.
  const Tensor dy_half = dy.dtype() == half ? dy : round_to(dy, half, MemCategory::Workspace);  // (..., out)
  count_backward_gemms(rows, rc.input_grad, weight_->trainable, GemmUnits::Half);
  weight_products_half(saved.tensors.at(0), dy_half);
  Tensor g;  // (rows, r) = dy B, for the adapter's part of dx
  if (lora_) g = lora_->backward_weights_half(saved.tensors.at(0), dy_half, saved);
  const Shape x_shape = release_input(saved);
  if (!rc.input_grad) return Tensor();
  // dx in the half type, rounded from the GEMM's fp32 sums: the value the fp32 path's dx is rounded
  // to, handed on at half the bytes (backward_child widens it for a layer that computes in fp32).
  // With an adapter dx stays fp32 until the adapter has added its part (backward_child rounds it).
  const Tensor dx = Tensor::empty(x_shape, lora_ ? DType::F32 : half, MemCategory::Workspace);  // (..., in)
  if (lora_) lora_->input_gradient(g, dx, rc);  // the adapter's part first, the base's added to it
  const Tensor tile = quantized_tile(half);
  if (!measuring(dy)) input_gradient_half(half, rows, dy_half, dx, lora_ ? 1.0f : 0.0f, tile);
  return dx;
}

Shape Linear::release_input(Saved& saved) const {
  const Shape shape = saved.tensors.at(0).shape();
  saved.tensors.at(0) = Tensor();  // an unfolded adapter's h (saved after x) stays
  return shape;
}

void Linear::weight_products_half(const Tensor& x, const Tensor& dy_half) {
  const DType half = x.dtype();
  const int64_t rows = x.numel() / in_;
  const Tensor* dw = weight_->trainable ? &weight_->ensure_grad() : nullptr;
  const Tensor* db = has_bias_ && bias_.trainable ? &bias_.ensure_grad() : nullptr;
  Tensor ones;  // (rows) in the half type: db = ones^T dy, a product on the half units like the others
  if (db) ones = Tensor::empty({rows}, half, MemCategory::Workspace);
  if (measuring(dy_half)) return;
  const uint16_t *g = dy_half.u16(), *xs = x.u16();
  if (dw) {
    ++weight_gradient_gemms_;
    if (layout_ == WeightLayout::InOut)
      gemm_half(half, true, false, in_, out_, rows, 1.0f, xs, in_, g, out_, 1.0f, dw->f32(), out_);  // x^T dy
    else
      gemm_half(half, true, false, out_, in_, rows, 1.0f, g, out_, xs, in_, 1.0f, dw->f32(), in_);  // dy^T x
  }
  if (db) {
    const float one = 1.0f;
    float_to_half(&one, half, ones.u16(), 1);
    std::fill(ones.u16() + 1, ones.u16() + rows, ones.u16()[0]);
    gemm_half(half, false, false, 1, out_, rows, 1.0f, ones.u16(), rows, g, out_, 1.0f, db->f32(), out_);
  }
}

void Linear::input_gradient_half(DType half, int64_t rows, const Tensor& dy_half, const Tensor& dx, float beta,
                                 const Tensor& tile) const {
  const uint16_t* g = dy_half.u16();
  const bool in_out = layout_ == WeightLayout::InOut;
  if (quantized_) {  // stored (in, out): dy W^T, its rows are dx's columns; stored (out, in): dy W by panels
    if (dx.dtype() == DType::F32) quantized_gemm_half(half, g, rows, *quantized_, in_out, beta, dx.f32(), tile.u16());
    else quantized_gemm_half_out(half, g, rows, *quantized_, in_out, nullptr, dx.u16(), tile.u16());
    return;
  }
  const uint16_t* w = weight_->value.u16();
  if (dx.dtype() == DType::F32) {
    if (in_out) gemm_half(half, false, true, rows, in_, out_, 1.0f, g, out_, w, out_, beta, dx.f32(), in_);  // dy W^T
    else gemm_half(half, false, false, rows, in_, out_, 1.0f, g, out_, w, in_, beta, dx.f32(), in_);        // dy W
  } else {
    if (in_out) gemm_half_out(half, false, true, rows, in_, out_, 1.0f, g, out_, w, out_, nullptr, dx.u16(), in_);  // dy W^T
    else gemm_half_out(half, false, false, rows, in_, out_, 1.0f, g, out_, w, in_, nullptr, dx.u16(), in_);        // dy W
  }
}

void Linear::count_backward_gemms(int64_t rows, bool dx, bool dw, GemmUnits units) const {
  if (dx) count_gemm(rows, in_, out_, units);  // dy W
  if (dw) count_gemm(in_, out_, rows, units);  // x^T dy
}

void Linear::weight_products(const Tensor& x, const Tensor& dy) {
  const int64_t rows = x.numel() / in_;
  const Tensor* dw = weight_->trainable ? &weight_->ensure_grad() : nullptr;
  const Tensor* db = has_bias_ && bias_.trainable ? &bias_.ensure_grad() : nullptr;
  Tensor ones;  // (rows): the bias gradient is a GEMV of dy with a row of ones
  if (db) ones = Tensor::empty({rows}, DType::F32, MemCategory::Workspace);
  if (measuring(dy)) return;
  if (dw) {
    ++weight_gradient_gemms_;
    if (layout_ == WeightLayout::InOut)
      gemm(true, false, in_, out_, rows, 1.0f, x.f32(), in_, dy.f32(), out_, 1.0f, dw->f32(), out_);  // x^T dy
    else
      gemm(true, false, out_, in_, rows, 1.0f, dy.f32(), out_, x.f32(), in_, 1.0f, dw->f32(), in_);  // dy^T x
  }
  if (db) {
    std::fill(ones.f32(), ones.f32() + rows, 1.0f);
    gemv(/*trans=*/true, rows, out_, 1.0f, dy.f32(), out_, ones.f32(), 1.0f, db->f32());
  }
}

Tensor Linear::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  if (saved.tensors.at(0).dtype() != DType::F32) return backward_half(dy, saved, rc);
  const int64_t rows = saved.tensors.at(0).numel() / in_;
  const bool folded = folds(rc);
  count_backward_gemms(rows, rc.input_grad, weight_->trainable, GemmUnits::F32);
  weight_products(saved.tensors.at(0), dy);
  Tensor g;  // (rows, r) = dy B, for an unfolded adapter's part of dx
  if (lora_) g = lora_->backward_weights(saved.tensors.at(0), dy, saved, rc, folded);
  const Shape x_shape = release_input(saved);
  if (!rc.input_grad) return Tensor();  // x is data (the first layer of the chain)
  const Tensor dx = Tensor::empty(x_shape, DType::F32, MemCategory::Workspace);  // (..., in)
  // An unfolded adapter writes its part first and the base's is added to it; a folded adapter's
  // weight W + scale B A carries its part.
  const bool adapter_part = lora_ && !folded;
  if (adapter_part) lora_->input_gradient(g, dx, rc);
  const Tensor w32 = gemm_weight(folded);
  const Tensor tile = quantized_tile(DType::F32);
  if (measuring(dy)) return dx;
  const float beta = adapter_part ? 1.0f : 0.0f;
  if (quantized_) quantized_gemm(dy.f32(), rows, *quantized_, layout_ == WeightLayout::InOut, beta, dx.f32(), tile.f32());
  else product(w32, dy.f32(), rows, true, beta, dx.f32());
  return dx;
}

void Linear::product(const Tensor& w32, const float* a, int64_t rows, bool input_gradient, float beta, float* c) const {
  const float* w = w32.f32();
  const bool in_out = layout_ == WeightLayout::InOut;
  if (!input_gradient)
    in_out ? gemm(false, false, rows, out_, in_, 1.0f, a, in_, w, out_, beta, c, out_)   // x W
           : gemm(false, true, rows, out_, in_, 1.0f, a, in_, w, in_, beta, c, out_);    // x W^T
  else
    in_out ? gemm(false, true, rows, in_, out_, 1.0f, a, out_, w, out_, beta, c, in_)    // dy W^T
           : gemm(false, false, rows, in_, out_, 1.0f, a, out_, w, in_, beta, c, in_);   // dy W
}

Tensor Linear::gemm_weight(bool fold_lora) const {
  if (quantized_) return Tensor();  // (multiplied tile by tile; adapters never fold into it)
  const Tensor w = widen(weight_->value);  // the weight itself when it is fp32, else a workspace copy
  if (!fold_lora) return w;
  // W + scale B A: in place in a widened copy; an fp32 weight gets a workspace copy of its own.
  const bool own_copy = weight_->value.dtype() != DType::F32;
  const Tensor folded = own_copy ? w : Tensor::empty(w.shape(), DType::F32, MemCategory::Workspace);
  lora_->fold_into(w, layout_ == WeightLayout::InOut, folded);
  return folded;
}

void Linear::set_quantized_weight(QuantizedMatrix weight) {
  check(owns_weight_, "linear " + name_ + ": a shared weight cannot be quantised");
  const Shape shape = weight_->value.shape();
  check(weight.rows() == shape[0] && weight.cols() == shape[1], "linear " + name_ + ": quantised weight of the wrong shape");
  quantized_ = std::make_unique<QuantizedMatrix>(std::move(weight));
  weight_->value = Tensor::placeholder(shape, DType::F32);
  weight_->trainable = false;  // a quantised weight is a frozen base
}

void Linear::store_frozen_weight_as(DType dtype) {
  if (quantized_) return;  // already smaller than any half type
  check(!weight_->trainable, "linear " + name_ + ": only a frozen weight may be stored in half precision");
  check(owns_weight_, "linear " + name_ + ": a shared weight keeps its own precision");
  if (dtype == weight_->value.dtype()) return;
  check(is_half(dtype), "linear " + name_ + ": base precision must be fp16 or bf16");
  weight_->value = round_to(weight_->value, dtype, MemCategory::Params);
}

void Linear::collect_params(std::vector<Param*>& out) {
  if (owns_weight_) out.push_back(&own_weight_);
  if (has_bias_) out.push_back(&bias_);
  if (lora_) {
    out.push_back(&lora_->a());
    out.push_back(&lora_->b());
  }
}

LoraAdapter& Linear::attach_lora(const std::string& key_prefix, const LoraConfig& config, uint64_t seed) {
  check(!lora_, "linear " + name_ + " already has a LoRA adapter");
  lora_ = std::make_unique<LoraAdapter>(key_prefix, in_, out_, config, seed);
  return *lora_;
}

void Linear::merge_lora() {
  check(lora_ != nullptr, "linear " + name_ + " has no LoRA adapter to merge");
  check(!quantized_, "linear " + name_ + ": an adapter cannot be merged into a quantised (nf4/int8) base");
  if (weight_->value.has_data()) lora_->merge_into(weight_->value, layout_ == WeightLayout::InOut, 1.0f);
  lora_.reset();
}

}  // namespace frugal
