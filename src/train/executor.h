#pragma once
// Runs forward and backward over the chain of blocks for one micro-batch. The store-all schedule:
// every block keeps what its backward needs until its backward has run.
#include "models/model.h"
#include "train/batch.h"

namespace frugal {

struct PassResult {
  double loss = 0.0;          // this micro-batch's share of the batch loss (sum / batch normalizer)
  int64_t forward_calls = 0;  // block forward evaluations
};

// Accumulates (+=) every trainable parameter's gradient.
PassResult forward_backward(Model& model, const Batch& batch, double normalizer, const RunContext& rc);

// Forward only (evaluation, generation); returns the chain's output, saves nothing for backward.
Tensor forward_only(Model& model, const Tensor& inputs, const RunContext& rc);

}  // namespace frugal
