#pragma once
// --memory-budget SIZE --batch-size N [--allow precision,optimizer] (plan and train choose
// micro-batch, accumulation, checkpointing and, when allowed, precision and optimizer:
// train/autopilot.h) and --memory-limit SIZE (a hard cap the ledger enforces during training).
#include <set>
#include <string>
#include <vector>

#include "run/model_builder.h"
#include "run/run_spec.h"
#include "train/autopilot.h"

namespace frugal {

// Whether --memory-budget asks for the autopilot; Error for --batch-size or --allow without it.
bool wants_autopilot(const MemorySpec& spec);

// What a run's spec asks of the autopilot (the keys the user gave restrict the search); Error for
// contradictions (--accum or --batch-size without a budget, an unknown --allow).
struct AutopilotInputs {
  const ModelSpec& model;
  const std::string& data;
  const LoraSpec& lora;
  const TrainOptions& options;  // the run's other options (optimizer, seed, ...)
  const std::set<std::string>& given;
};
AutopilotRequest autopilot_request(const MemorySpec& spec, const AutopilotInputs& in);

// Plans every configuration; Error naming the smallest reachable total and what would help when
// nothing fits.
AutopilotResult run_autopilot(const AutopilotRequest& request, const AutopilotInputs& in);

// The chosen configuration applied to the spec (micro-batch, accumulation, checkpoint and
// activation budget, precision, optimizer), re-parsed into the options.
void apply_candidate(const Candidate& chosen, TrainOptions& options, CheckpointSpec& checkpoint,
                     PrecisionSpec& precision);

// `frugal train` with the given command line's model and training flags (`args`: the command line
// as given, or the one a spec dict stands for) and the chosen configuration.
std::string train_command_line(const Candidate& chosen, const std::string& budget, const std::vector<std::string>& args);

}  // namespace frugal
