#pragma once
// One forward + backward of a spec's model on a batch, no update (run/run_spec.h: --model, LoRA,
// precision, checkpointing, --accum): `frugal grad`, frugal::grad() and Python's frugal.grad().
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "models/model.h"
#include "run/run_spec.h"
#include "train/batch.h"

namespace frugal {

// The batch for the built model (its input and target types: Model::input_dtype, target_dtype).
using BatchLoader = std::function<Batch(const Model& model)>;
// The mean loss and every trainable parameter's gradient under its name (with LoRA: the adapter's
// keys), while the model still lives (rank 0 only under mpirun).
using GradientConsumer = std::function<void(double loss, const std::vector<std::pair<std::string, Tensor>>& grads)>;

void grad_run(RunSpec& spec, const BatchLoader& load_batch, const GradientConsumer& consume);

}  // namespace frugal
