#pragma once
// Gradient accumulation: one optimizer batch run as `accum` equal micro-batches, one after another,
// parameter gradients adding up in place. Every micro-batch's summed loss is divided by the number
// of counted items (tokens whose target is not -100, or samples) of the WHOLE batch, counted once
// before the first micro-batch runs. So the micro-batch gradients sum to exactly the full-batch
// gradient of the mean loss, however the counted items are spread over the micro-batches
// (dividing each micro-batch by its own count and then by K would not).
#include "models/model.h"
#include "train/batch.h"
#include "train/schedule.h"

namespace frugal {

struct AccumulatedPass {
  double loss = 0.0;          // mean over the batch's counted items
  int64_t items = 0;          // counted items in the batch
  int64_t forward_calls = 0;  // block forward evaluations over all micro-batches
  double communication_s = 0.0;  // data parallelism: seconds spent summing gradients across ranks
};

// Adds the batch's gradient to every trainable parameter's gradient. rc.micro_batch is set per
// micro-batch. Error if accum does not divide the batch.
// schedule: the checkpointing schedule of one micro-batch (nullptr: store-all).
// total_items > 0 divides by that count instead of the batch's own (data parallelism: the batch is
// this rank's shard, the count is the whole optimizer batch's over all ranks). rc.sample_offset is
// the batch's first sample within the optimizer batch.
AccumulatedPass accumulate_gradients(Model& model, const Batch& batch, int64_t accum, RunContext rc,
                                     const Schedule* schedule = nullptr, int64_t total_items = 0);

}  // namespace frugal
