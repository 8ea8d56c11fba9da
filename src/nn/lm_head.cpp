#include "nn/lm_head.h"

#include <algorithm>

#include "core/error.h"
#include "core/work_meter.h"
#include "kernels/convert.h"
#include "kernels/cross_entropy.h"
#include "kernels/gemm.h"
#include "kernels/lm_head_loss.h"
#include "nn/linear.h"

namespace frugal {

TiedLmHead::TiedLmHead(Param* wte, int64_t dim, int64_t vocab) : wte_(wte), dim_(dim), vocab_(vocab) {
  check(wte->value.shape() == Shape({vocab, dim}), "lm head: wte has the wrong shape " + wte->value.shape().str());
}

void TiedLmHead::set_quantized_weight(QuantizedMatrix weight) {
  check(!wte_->trainable, "lm head: only a frozen head may be quantised");
  check(weight.rows() == vocab_ && weight.cols() == dim_, "lm head: quantised weight of the wrong shape");
  quantized_ = std::make_unique<QuantizedMatrix>(std::move(weight));
  wte_->value = Tensor::placeholder({vocab_, dim_}, DType::F32);
}

void TiedLmHead::set_chunk_rows(int64_t rows) {
  check(rows >= 1 && rows <= (int64_t{1} << 24),
        "loss chunk of " + std::to_string(rows) + " rows cannot work: give 1..16777216 rows (0 picks the default)");
  chunk_rows_ = rows;
}

int64_t TiedLmHead::chunk_rows_for(int64_t N) const {
  const int64_t budget = wte_->trainable ? 4 * kLogitsBudget : kLogitsBudget;
  const int64_t rows = chunk_rows_ > 0 ? chunk_rows_ : std::max(kMinChunkRows, budget / vocab_);
  return std::max<int64_t>(1, std::min(rows, N));
}

void TiedLmHead::check_inputs(const Tensor& hidden, const Tensor& targets, double normalizer) const {
  check(hidden.ndim() >= 1 && hidden.dim(-1) == dim_,
        "lm head: expected hidden states (..., " + std::to_string(dim_) + "), got " + hidden.shape().str());
  check(targets.dtype() == DType::I32 && targets.numel() * dim_ == hidden.numel(),
        "targets " + targets.shape().str() + " do not match hidden states " + hidden.shape().str());
  if (!targets.has_data()) return;
  check(normalizer > 0, "the batch has no counted targets (all are -100)");
  const int32_t* t = targets.i32();
  for (int64_t i = 0; i < targets.numel(); ++i)
    check(t[i] == kIgnoreIndex || (t[i] >= 0 && t[i] < vocab_),
          "target token id " + std::to_string(t[i]) + " is out of range for the model's vocab_size " +
              std::to_string(vocab_));
}

double TiedLmHead::loss_forward_backward(const Tensor& hidden, const Tensor& targets, double normalizer,
                                         const RunContext& rc, Tensor& dhidden) {
  return run(hidden, targets, normalizer, rc, &dhidden);
}

double TiedLmHead::loss(const Tensor& hidden, const Tensor& targets, double normalizer, const RunContext& rc) {
  return run(hidden, targets, normalizer, rc, nullptr);
}

double TiedLmHead::run(const Tensor& hidden, const Tensor& targets, double normalizer, const RunContext& rc,
                       Tensor* dhidden) {
  check_inputs(hidden, targets, normalizer);
  const bool grad = dhidden != nullptr;
  const DType wt = wte_->value.dtype();
  HeadLossProblem p;
  p.N = hidden.numel() / dim_;
  p.V = vocab_;
  p.D = dim_;
  p.grad_scale = static_cast<float>(rc.loss_scale / normalizer);
  p.chunk_rows = chunk_rows_for(p.N);
  p.grad_type = rc.precision;
  Tensor logits = Tensor::empty({p.chunk_rows, vocab_}, DType::F32, MemCategory::Workspace);  // one chunk (rows, V)
  const Tensor dw = grad && wte_->trainable ? wte_->ensure_grad() : Tensor();                  // (V, D) fp32
  if (dw.defined() && hidden.has_data()) Linear::count_weight_gradient_gemm();
  const bool on_half_units =
      is_half(hidden.dtype()) && has_half_gemm(hidden.dtype()) && (quantized_ || wt == hidden.dtype());
  const GemmUnits units = on_half_units ? GemmUnits::Half : GemmUnits::F32;
  count_gemm(p.N, p.V, p.D, units);               // logits = h wte^T
  if (grad) count_gemm(p.N, p.D, p.V, units);     // dh = dlogits wte
  if (dw.defined()) count_gemm(p.V, p.D, p.N, units);  // dwte = dlogits^T h
  if (on_half_units) {
    // On the half units: h and wte (or its dequantised tiles) multiplied as they are, dlogits rounded
    // once into a half chunk.
    const DType half = hidden.dtype();
    const Tensor dlogits = grad ? Tensor::empty({p.chunk_rows, vocab_}, half, MemCategory::Workspace) : Tensor();
    const int64_t tile_values = quantized_ ? quantized_gemm_half_tile_values(*quantized_) : 0;
    const Tensor tile =  // a quantised head's dequantised tile
        quantized_ ? Tensor::empty({tile_values}, half, MemCategory::Workspace) : Tensor();
    if (grad) *dhidden = Tensor::empty(hidden.shape(), half, MemCategory::Workspace);  // (B, T, D) half
    if (!hidden.has_data()) return 0.0;
    p.targets = targets.i32();
    p.grad_type = half;
    HalfHeadWeight w;
    if (quantized_) {
      w.quantized = quantized_.get();
      w.tile = tile.u16();
    } else {
      w.w16 = wte_->value.u16();
    }
    return lm_head_loss_half(p, half, hidden.u16(), w, logits.f32(), grad ? dlogits.u16() : nullptr,
                             grad ? dhidden->u16() : nullptr, dw.defined() ? dw.f32() : nullptr) /
           normalizer;
  }
  const Tensor h = widen(hidden);  // (B, T, D) fp32
  Tensor block;
  const HeadWeight w = weight_view(block);
  if (grad) *dhidden = Tensor::empty(hidden.shape(), DType::F32, MemCategory::Workspace);  // (B, T, D)
  if (!hidden.has_data()) return 0.0;
  p.targets = targets.i32();
  return lm_head_loss(p, h.f32(), w, logits.f32(), grad ? dhidden->f32() : nullptr, dw.defined() ? dw.f32() : nullptr) /
         normalizer;
}

HeadWeight TiedLmHead::weight_view(Tensor& block) const {
  HeadWeight w;
  w.w_type = wte_->value.dtype();
  const bool whole_fp32 = !quantized_ && w.w_type == DType::F32;
  if (!whole_fp32) {  // a half or quantised wte: widened a block of rows at a time, never whole
    w.vocab_block = std::min(kVocabBlock, vocab_);
    block = Tensor::empty({w.vocab_block, dim_}, DType::F32, MemCategory::Workspace);  // (block, D)
  }
  if (quantized_) {
    w.quantized = quantized_.get();
    w.w_block = block.has_data() ? block.f32() : nullptr;
    return w;
  }
  if (!wte_->value.has_data()) return w;  // measure mode
  if (whole_fp32) {
    w.w32 = wte_->value.f32();
  } else {
    w.w16 = wte_->value.u16();
    w.w_block = block.f32();
  }
  return w;
}

Tensor TiedLmHead::logits(const Tensor& hidden) {
  check(hidden.ndim() >= 1 && hidden.dim(-1) == dim_,
        "lm head: expected hidden states (..., " + std::to_string(dim_) + "), got " + hidden.shape().str());
  const Tensor h = widen(hidden);
  Tensor out = Tensor::empty(hidden.shape().with(-1, vocab_), DType::F32, MemCategory::Workspace);  // (..., V)
  Tensor block;
  const HeadWeight w = weight_view(block);
  if (!hidden.has_data()) return out;
  lm_head_logits(hidden.numel() / dim_, vocab_, dim_, h.f32(), w, out.f32());
  return out;
}

}  // namespace frugal
