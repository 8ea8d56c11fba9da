#pragma once
// The flags of `frugal train`, and what --resume does with them: a training-state checkpoint
// stores the run's configuration as {flag: value}; resuming takes every flag the command line
// does not give from it, and refuses flags that contradict it.
#include <set>
#include <string>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/memory_flags.h"
#include "train/checkpoint.h"

namespace frugal::cli {

struct TrainFlags {
  ModelFlags model;
  PrecisionFlags precision;
  CheckpointFlags checkpoint;
  LoraFlags lora;
  std::string save_adapter_dir;
  TrainOptions options;
  int threads = 0;
  std::string data = "fortunes";
  std::string save_dir, summary_path, metrics_path, plots_dir;
  int64_t sample_tokens = 300;
  int64_t save_every = 0;  // training-state checkpoint every N steps into --save DIR/checkpoints
  int keep = 3;            // checkpoints kept
  std::string resume;      // --resume DIR
  MemoryFlags memory;      // --memory-budget, --batch-size, --allow, --memory-limit
  std::set<std::string> given;  // flags given on the command line (filled by the parser)
};

// {flag: value} of everything that defines the run (model, data, training, precision, LoRA),
// plus "world_size".
nlohmann::json run_config(const TrainFlags& f, int world_size);

// --resume: refuses given flags that contradict the checkpoint's run (and a different world size),
// takes every other flag from it, and points the model at the checkpoint's model directory.
// Returns the flags taken, as "--flag value" text for the log.
std::string adopt_checkpoint_config(TrainFlags& f, const CheckpointRef& checkpoint, int world_size);

}  // namespace frugal::cli
