#pragma once
// A training run of a spec (run/run_spec.h): `frugal train`, frugal::train() and Python's
// frugal.train() all end here. It prints what `frugal train` prints (header and progress on
// stderr, the memory report and a sample on stdout), writes the spec's outputs and returns the
// summary (DESIGN.md "Run summary").
#include <functional>
#include <nlohmann/json.hpp>

#include "run/run_spec.h"

namespace frugal {

// Called with each step's metrics (the --metrics line); returning false ends the run after that
// step, cleanly: outputs written, a training-state checkpoint there with --save-every.
using StepCallback = std::function<bool(const nlohmann::json& step)>;

// Resolves the spec (--resume, --memory-budget: the spec is updated with what was chosen), builds
// the model, data and trainer, trains. Error for anything it refuses.
nlohmann::json train_run(RunSpec& spec, const StepCallback& on_step = {});

}  // namespace frugal
