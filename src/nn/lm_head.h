#pragma once
// GPT-2's LM head tied to wte (logits = h wte^T) fused with the cross-entropy loss
// (kernels/lm_head_loss.h): training never holds the (B, T, V) logits or their gradient, only one
// chunk of rows x V. Not a block of the chain: the model's chain ends with ln_f, and the executor
// hands its output here for the loss; evaluation and generation ask it for logits.
#include <memory>

#include "kernels/lm_head_loss.h"
#include "kernels/quantized_matrix.h"
#include "nn/layer.h"

namespace frugal {

class TiedLmHead {
 public:
  TiedLmHead(Param* wte, int64_t dim, int64_t vocab);

  // hidden (B, T, D) in fp32 or the half type; targets (B, T) int32, -100 ignored. Returns the summed
  // loss of the counted targets / normalizer; sets dhidden (B, T, D) Workspace, multiplied by
  // rc.loss_scale (half when hidden and wte are half on the half units, else fp32); adds the head's
  // share to wte's gradient when wte is trainable.
  double loss_forward_backward(const Tensor& hidden, const Tensor& targets, double normalizer, const RunContext& rc,
                               Tensor& dhidden);
  // The same loss without any gradient (evaluation).
  double loss(const Tensor& hidden, const Tensor& targets, double normalizer, const RunContext& rc);
  // (..., V) fp32 Workspace logits of hidden (..., D).
  Tensor logits(const Tensor& hidden);

  Param* weight() const { return wte_; }  // the only parameter it uses

  // A frozen head of its own (not the embedding) stored in nf4/int8 (--quantize-head): the weight's
  // value becomes a placeholder, the products dequantise tiles of it (kernels/quantized_matrix.h).
  void set_quantized_weight(QuantizedMatrix weight);
  const QuantizedMatrix* quantized_weight() const { return quantized_.get(); }

  // Rows per chunk (>= 1), instead of the automatic choice (chunk_rows_for).
  void set_chunk_rows(int64_t rows);
  // The rows per chunk a call over N rows uses. Automatic (measured, docs/BENCHMARKS.md "Fused LM
  // head"): as many rows as fit kLogitsBudget logits (49 MiB of fp32), at least kMinChunkRows; four
  // times that when wte is trainable, because every chunk reads and writes all of d(wte) (V x D) once
  // and fewer, larger chunks pass over it fewer times. GPT-2 small: 256 rows frozen, 1024 trainable;
  // a vocabulary of 256: all rows in one chunk.
  int64_t chunk_rows_for(int64_t N) const;
  static constexpr int64_t kLogitsBudget = 256 * 50257;
  static constexpr int64_t kMinChunkRows = 256;
  // Rows of a half wte widened at a time when there are no half units to multiply it directly.
  static constexpr int64_t kVocabBlock = 4096;

 private:
  double run(const Tensor& hidden, const Tensor& targets, double normalizer, const RunContext& rc, Tensor* dhidden);
  void check_inputs(const Tensor& hidden, const Tensor& targets, double normalizer) const;
  // wte as the kernels take it; a half wte gets its widening scratch in `block`.
  HeadWeight weight_view(Tensor& block) const;

  Param* wte_;  // (V, D), owned by the embedding (tied) or the model (untied)
  std::unique_ptr<QuantizedMatrix> quantized_;  // --quantize-head: wte_ is then a placeholder
  int64_t dim_, vocab_;
  int64_t chunk_rows_ = 0;  // 0: automatic
};

}  // namespace frugal
