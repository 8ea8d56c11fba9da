#pragma once
// Training-state checkpoints (--save-every N --save DIR, --resume DIR). Each is a directory
//   DIR/checkpoints/step-00000005/
//     config.json, model.safetensors   the model (a plain model directory: `--model` loads it)
//     state.safetensors                every parameter in its stored dtype, FP32 masters, optimizer state
//     trainer.json                     steps done, the run's configuration, optimizer step count, loss
//                                      scaler, and each file's size and CRC-32
// written into a hidden ".step-00000005.partial" directory (every file fsync'd) and renamed into place,
// so a crash leaves either a complete checkpoint or an ignored partial one. The RNG is counter-based
// and the data a pure function of (seed, step): the step count is the whole RNG and data position.
#include <optional>
#include <string>
#include <nlohmann/json.hpp>

#include "models/model.h"
#include "train/trainer.h"

namespace frugal {

struct CheckpointRef {
  std::string dir;    // .../checkpoints/step-NNNNNNNN
  int64_t steps_done = 0;
  nlohmann::json trainer;  // trainer.json
};

// Writes the checkpoint after `steps_done` optimizer steps into root/checkpoints and keeps the
// latest `keep` complete ones (older ones are deleted). `run_config` is stored for --resume.
void write_training_checkpoint(const std::string& root, int64_t steps_done, const Model& model, Trainer& trainer,
                               const nlohmann::json& run_config, int keep);

// The newest checkpoint under root (root itself, root/checkpoints, or one step directory) whose
// files are all present with the recorded sizes and CRC-32s. Incomplete or damaged ones are
// skipped with a warning on stderr. Error if there is none.
CheckpointRef latest_checkpoint(const std::string& root);

// Puts the checkpoint's parameters, masters, optimizer and loss-scaler state into a trainer built
// for the same configuration.
void restore_training_checkpoint(const CheckpointRef& checkpoint, Trainer& trainer);

}  // namespace frugal
