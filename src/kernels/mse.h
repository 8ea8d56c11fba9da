#pragma once
// Mean squared error with its gradient in one pass.
//
//   loss  = sum_rows sum_cols (pred - target)^2 / (normalizer * n_cols)
//   dpred = 2 * (pred - target) / (normalizer * n_cols)
//
// `normalizer` is the number of samples (rows) counted in the whole optimizer batch, not in this
// call: micro-batches of one batch share it, so their losses and gradients add up to those of
// the full batch (the accumulation rule of DESIGN.md). With normalizer == n_rows this is
// torch.nn.functional.mse_loss(pred, target, reduction='mean').
#include <cstdint>

namespace frugal {

// pred, target, dpred: (n_rows, n_cols) row-major. dpred may be null (loss only). The loss is
// accumulated in double.
double mse_forward_backward(const float* pred, const float* target, int64_t n_rows, int64_t n_cols,
                            double normalizer, float* dpred);

}  // namespace frugal
