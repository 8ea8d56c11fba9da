#pragma once
// A batch of samples and the counting rule used to normalise losses.
#include "core/tensor.h"
#include "models/model.h"

namespace frugal {

struct Batch {
  Tensor inputs;   // GPT: i32 (B, T); MLP/linear: f32 (B, in); CNN: f32 (B, 1, 28, 28)
  Tensor targets;  // GPT: i32 (B, T), -100 ignored; classification: i32 (B); regression: f32 (B, out)
  int64_t size() const { return inputs.dim(0); }
  // Samples [begin, end) as views (micro-batches of an optimizer batch).
  Batch slice(int64_t begin, int64_t end) const { return {inputs.slice_rows(begin, end), targets.slice_rows(begin, end)}; }
};

// Empty batch tensors (MemCategory::Activations) of the model's sample shapes.
Batch allocate_batch(const Model& model, int64_t batch_size);

// Items a loss is averaged over: targets that are not -100 (token models) or samples.
int64_t count_items(const Model& model, const Batch& batch);

// Checks a user-provided batch against the model (dtypes and shapes; label and token ranges are
// checked by the loss and the embedding when they run).
void validate_batch(const Model& model, const Batch& batch);

}  // namespace frugal
