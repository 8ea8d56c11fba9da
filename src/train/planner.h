#pragma once
// Predicts the training memory of a configuration before anything is allocated: the model is
// built and two training steps are run through a measuring ledger (core/ledger.h), which keeps the
// books of every allocation the real run would make but hands out no memory and runs no kernel.
// Because the prediction walks the very schedule the real run executes, predicted and measured
// bytes agree by construction; tests check both against the shape arithmetic.
#include <functional>
#include <memory>

#include "core/ledger.h"
#include "models/model.h"
#include "train/cost_model.h"
#include "train/trainer.h"

namespace frugal {

struct MemoryPlan {
  MemorySnapshot peak;        // per category and total, over model creation plus two steps
  MemorySnapshot at_peak;     // what the total peak is made of (MemoryLedger::at_peak)
  int64_t forward_calls = 0;  // block forward evaluations per optimizer step
  int64_t layer_count = 0;    // blocks in the chain
  nlohmann::json kernels;     // Model::kernels: what the big scratch and activations are made of
  nlohmann::json run;         // describe_run (train/run_description.h): what was planned, read from the model
  StepWork work;              // of the last planned step (with state allocated): the cost model's input
};

using ModelFactory = std::function<std::unique_ptr<Model>()>;

// `rank`: one rank of a data-parallel job (planning_communicator, comm/communicator.h), whose share
// of sharded state (--zero) is planned; by default this process alone.
MemoryPlan plan_training_memory(const ModelFactory& make_model, const TrainOptions& options,
                                Communicator* rank = nullptr);

}  // namespace frugal
