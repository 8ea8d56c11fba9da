#pragma once
// Data parallelism: every rank holds the whole model and runs its own shard of each optimizer batch;
// the gradients are summed across ranks once per optimizer step, after the last micro-batch. Each
// rank divides its losses by the counted items of the WHOLE optimizer batch (summed over ranks
// before the first micro-batch), so the summed gradient is exactly the single-process gradient of
// the mean loss, however the counted tokens are spread over the ranks.
#include <vector>

#include "comm/communicator.h"
#include "models/model.h"
#include "train/accumulate.h"

namespace frugal {

// This rank's rows of the optimizer batch (all of it on a single process). Error if the ranks do
// not divide it evenly.
Batch rank_shard(const Batch& global, const Communicator& comm);

// accumulate_gradients on this rank's shard of `global`, then the sum over ranks: gradients (one
// in-place allreduce per trainable tensor, each a contiguous bucket; not when `allreduce_gradients`
// is false: ZeRO-2 reduces them to their owners during the backward), loss and item count.
AccumulatedPass accumulate_data_parallel(Model& model, const Batch& global, int64_t accum, RunContext rc,
                                         const Schedule* schedule, Communicator& comm, bool allreduce_gradients = true);

// Errors unless every rank holds the same parameter values (same seed, same files).
void check_same_parameters(const std::vector<Param*>& params, Communicator& comm);

// ZeRO-1: the rank that owns each parameter (contiguous runs of parameters of about equal numbers
// per rank). Only the owner keeps optimizer state (and an FP32 master) for it and updates it.
std::vector<int> zero_owners(const std::vector<Param*>& params, int ranks);
// After the owners' updates: every trainable parameter's value from its owner to all ranks;
// `frozen_too`: the frozen ones as well (owned by rank 0; after a resume that drew them from the seed).
void broadcast_from_owners(const std::vector<Param*>& params, const std::vector<int>& owners, Communicator& comm,
                           bool frozen_too = false);

}  // namespace frugal
