#pragma once
// --memory-budget SIZE --batch-size N [--allow precision] (plan and train choose micro-batch,
// accumulation, checkpointing and, when allowed, precision: train/autopilot.h) and --memory-limit
// SIZE (a hard cap the ledger enforces during training).
#include <set>
#include <string>
#include <vector>

#include "cli/common.h"
#include "train/autopilot.h"

namespace frugal::cli {

struct MemoryFlags {
  std::string budget;  // "": no autopilot
  int64_t batch_size = 0;
  std::string allow;  // comma-separated: precision
  std::string limit;  // "": none (train: the budget, when there is one)
};
void add_memory_flags(CLI::App& app, MemoryFlags& flags, bool with_limit);
// Whether --memory-budget asks for the autopilot; Error for --batch-size or --allow without it.
bool wants_autopilot(const MemoryFlags& flags);

// What a run's flags ask of the autopilot (the flags the user gave restrict the search); Error for
// contradictions (--accum or --batch-size without a budget, an unknown --allow).
struct AutopilotInputs {
  const ModelFlags& model;
  const std::string& data;
  const LoraFlags& lora;
  const TrainOptions& options;  // the run's other options (optimizer, seed, ...)
  const std::set<std::string>& given;
};
AutopilotRequest autopilot_request(const MemoryFlags& flags, const AutopilotInputs& in);

// Plans every configuration; Error naming the smallest reachable total and what would help when
// nothing fits.
AutopilotResult run_autopilot(const AutopilotRequest& request, const AutopilotInputs& in);

// The chosen configuration applied to the flags (micro-batch, accumulation, checkpoint and
// activation budget, precision), re-parsed into the options.
void apply_candidate(const Candidate& chosen, TrainOptions& options, CheckpointFlags& checkpoint,
                     PrecisionFlags& precision);

// `frugal train` with this command line's model and training flags and the chosen configuration.
std::string train_command_line(const Candidate& chosen, const std::string& budget);

// The command line frugal was started with (main records it).
void record_command_line(int argc, char** argv);

}  // namespace frugal::cli
