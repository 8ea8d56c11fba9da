#pragma once
// A batch of samples and the counting rule used to normalise losses.
#include <vector>

#include "core/tensor.h"
#include "models/model.h"

namespace frugal {

struct Batch {
  Tensor inputs;   // GPT: i32 (B, T); MLP/linear: f32 (B, in); CNN: f32 (B, 1, 28, 28)
  Tensor targets;  // GPT: i32 (B, T), -100 ignored; classification: i32 (B); regression: f32 (B, out)
  // Token models only, optional: i32 like inputs, each token's position within its example (0 at an
  // example's first token). Rows that hold several examples (packing) restart positions at each one,
  // and attention never crosses an example's start. Undefined: row token t is at position t.
  Tensor positions{};
  // A ragged batch (examples of different lengths, no padding): inputs, targets and positions are
  // (1, N) and sample e is tokens [example_starts[e], example_starts[e + 1]). Empty: rectangular.
  std::vector<int64_t> example_starts{};

  int64_t size() const {
    return example_starts.empty() ? inputs.dim(0) : static_cast<int64_t>(example_starts.size()) - 1;
  }
  // Samples [begin, end) as views (micro-batches of an optimizer batch).
  Batch slice(int64_t begin, int64_t end) const;
};

// Empty batch tensors (MemCategory::Activations) of the model's sample shapes.
Batch allocate_batch(const Model& model, int64_t batch_size);

// Items a loss is averaged over: targets that are not -100 (token models) or samples.
int64_t count_items(const Model& model, const Batch& batch);

// Checks that `positions` (i32, like the inputs) counts up from 0 in steps of 1 within each example:
// p[t] is 0 (an example starts) or p[t - 1] + 1, and each row starts at 0. Error naming the token.
void validate_positions(const Tensor& positions);

// Checks a user-provided batch against the model (dtypes and shapes; label and token ranges are
// checked by the loss and the embedding when they run).
void validate_batch(const Model& model, const Batch& batch);

}  // namespace frugal
