#pragma once
// Runs one micro-batch through the chain of blocks following a schedule (train/schedule.h):
// forwards that keep or drop their saved tensors, recomputation from stored inputs, the loss, and
// the backwards. A recomputed forward runs with RunContext::recompute set (BatchNorm then leaves its
// running statistics alone) and gives bit-identical tensors, so gradients do not depend on the
// strategy.
#include "models/model.h"
#include "train/batch.h"
#include "train/schedule.h"

namespace frugal {

struct PassResult {
  double loss = 0.0;          // this micro-batch's share of the batch loss (sum / batch normalizer)
  int64_t forward_calls = 0;  // block forward evaluations, recomputation included
};

// Accumulates (+=) every trainable parameter's gradient. schedule == nullptr: store-all.
PassResult forward_backward(Model& model, const Batch& batch, double normalizer, const RunContext& rc,
                            const Schedule* schedule = nullptr);

// Forward only (evaluation, generation); returns the chain's output (logits, through the model's LM
// head when it has one), saves nothing for backward.
Tensor forward_only(Model& model, const Tensor& inputs, const RunContext& rc);

// The loss of a batch without gradients (evaluation): sum over counted targets / normalizer. A model
// with an LM head gets it chunk by chunk from the head, never holding the (B, T, V) logits.
double loss_only(Model& model, const Batch& batch, double normalizer, const RunContext& rc);

}  // namespace frugal
