#pragma once
// The memory-budget autopilot: the configurations that compute the same optimizer step (micro-batch
// x accumulation over a fixed batch, each checkpointing strategy, and with the user's leave the
// precision), each with its exact memory from the planner and its step time from the cost model;
// the fastest that fits the budget is chosen.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/machine_rates.h"
#include "train/planner.h"

namespace frugal {

struct AutopilotRequest {
  int64_t budget_bytes = 0;
  int64_t batch_size = 0;               // samples per optimizer step
  std::vector<DType> precisions;        // candidates (the run's own only, unless precision is allowed)
  std::vector<std::string> optimizers;  // candidates (the run's own only, unless optimizer is allowed)
  int64_t micro_batch = 0;              // fixed by the user (0: any divisor of batch_size)
  std::string checkpoint;               // fixed by the user ("": any strategy)
};

struct Candidate {
  TrainOptions options;  // micro_batch, accum, checkpoint, activation_budget, precision and optimizer set
  MemoryPlan plan;
  double step_seconds = 0;  // predicted
  bool fits = false;
  std::string describe() const;  // "micro-batch 16 x 4, sqrt, bf16" (", adamw8bit" when not AdamW)
};

struct AutopilotResult {
  std::vector<Candidate> candidates;  // every configuration planned: fitting ones first, fastest first
  int64_t fitting = 0;                // how many of them fit
  double search_seconds = 0;
  const Candidate* chosen() const { return fitting > 0 ? &candidates.front() : nullptr; }
  const Candidate* smallest() const;  // the least memory of all (what is reachable at all)
};

// Builds the model a configuration trains (its precision decides the weights' storage).
using ConfiguredModelFactory = std::function<std::unique_ptr<Model>(const TrainOptions&)>;

// Plans every configuration of `request` on top of `base` (the run's other options). Error when the
// request itself is impossible (a micro-batch that does not divide the batch).
AutopilotResult search_configurations(const ConfiguredModelFactory& make_model, const TrainOptions& base,
                                      const AutopilotRequest& request, const MachineRates& rates);

}  // namespace frugal
