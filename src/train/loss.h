#pragma once
// The loss at the end of the chain, fused with its gradient.
#include "models/model.h"
#include "train/batch.h"

namespace frugal {

// Returns this micro-batch's summed loss divided by `normalizer` (the counted items of the whole
// optimizer batch) and sets doutput = dLoss/doutput (MemCategory::Workspace).
// output: GPT logits (B, T, V); classifier logits (B, C); regression predictions (B, out).
double loss_forward_backward(LossKind kind, const Tensor& output, const Tensor& targets, double normalizer,
                             Tensor& doutput);

}  // namespace frugal
