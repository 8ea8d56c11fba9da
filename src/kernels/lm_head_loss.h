#pragma once
// A language-model head (logits = h W^T) fused with softmax cross-entropy and its gradient, a
// chunk of rows at a time: the chunk's logits against the whole vocabulary, each row's
// log-sum-exp, the loss of the counted targets and dlogits (in place), then d(hidden) and dW from
// them; the chunk is dropped. The (N, V) logits and their gradient never exist: scratch is one
// chunk, rows x V.
//
// Gradient: dlogits = (softmax - onehot(target)) * grad_scale for counted rows, 0 for rows whose
// target is kIgnoreIndex (kernels/cross_entropy.h). grad_scale = loss scale / the optimizer batch's
// counted items, exactly the unfused loss's normalisation. Deterministic: rows in order, chunks in
// order, dW accumulated chunk after chunk.
#include <cstdint>

#include "core/dtype.h"

namespace frugal {

struct HeadLossProblem {
  int64_t N = 0, V = 0, D = 0;   // rows (B * T), vocabulary, width
  const int32_t* targets = nullptr;  // (N)
  float grad_scale = 0.0f;
  int64_t chunk_rows = 0;        // rows per chunk (>= 1)
  // Under --precision fp16/bf16 the loss gradient is stored in the half type: dlogits are rounded
  // to it before the products (F32: not rounded).
  DType grad_type = DType::F32;
};

class QuantizedMatrix;

// The weight W (V, D): fp32 (w32), or half (w16 of w_type) or quantised (nf4/int8, a frozen head)
// widened a block of vocab_block rows at a time into w_block (vocab_block x D floats) -- never the
// whole table.
struct HeadWeight {
  const float* w32 = nullptr;
  const uint16_t* w16 = nullptr;
  const QuantizedMatrix* quantized = nullptr;
  DType w_type = DType::F32;
  float* w_block = nullptr;
  int64_t vocab_block = 0;
};

// fp32 hidden states h (N, D). logits: chunk_rows x V floats of scratch. dh (N, D) written, or
// null: no gradients at all (evaluation). dw (V, D) accumulated (+=), or null (a frozen W: no
// weight-gradient GEMM). Returns the summed loss over counted rows (not divided).
double lm_head_loss(const HeadLossProblem& p, const float* h, const HeadWeight& w, float* logits, float* dh, float* dw);

// W (V, D) for the half units: in the half type (w16), or quantised (a frozen head) and multiplied a
// dequantised tile at a time in `tile` (kernels/quantized_matrix.h quantized_gemm_half_tile_values).
struct HalfHeadWeight {
  const uint16_t* w16 = nullptr;
  const QuantizedMatrix* quantized = nullptr;
  uint16_t* tile = nullptr;
};

// h (N, D) and W (V, D) in a half type on the CPU's half-precision GEMM units (kernels/gemm.h
// has_half_gemm): logits accumulated in fp32, dlogits rounded into dlogits_half (chunk_rows x V) for
// the two gradient products, dh written in the half type (or null), dw (fp32) accumulated or null
// (always null for a quantised W).
double lm_head_loss_half(const HeadLossProblem& p, DType type, const uint16_t* h, const HalfHeadWeight& w,
                         float* logits, uint16_t* dlogits_half, uint16_t* dh, float* dw);

// logits (N, V) = h W^T for evaluation and generation, a vocabulary block at a time for a half W.
void lm_head_logits(int64_t N, int64_t V, int64_t D, const float* h, const HeadWeight& w, float* logits);

}  // namespace frugal
