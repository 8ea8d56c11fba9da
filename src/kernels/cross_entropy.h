#pragma once
// Softmax cross-entropy with ignore index, fused with its gradient.
#include <cstdint>

namespace frugal {

constexpr int32_t kIgnoreIndex = -100;

// logits: (N, V); targets: (N), kIgnoreIndex rows are not counted.
// Returns sum over counted rows of -log softmax(logits)[target]; dlogits (N, V) =
// (softmax - onehot) / normalizer for counted rows, 0 for ignored ones. The normalizer is the
// number of counted items in the whole optimizer batch (across micro-batches), so that summing
// the per-micro-batch results gives the full-batch mean.
double cross_entropy_forward_backward(const float* logits, const int32_t* targets, int64_t N, int64_t V,
                                      double normalizer, float* dlogits);

// Number of targets that are not kIgnoreIndex.
int64_t count_counted_targets(const int32_t* targets, int64_t n);

}  // namespace frugal
