#pragma once
// Training-state checkpoints (--save-every N --save DIR, --resume DIR). Each is a directory
//   DIR/checkpoints/step-00000005/
//     config.json, model.safetensors   the model (a plain model directory: `--model` loads it)
//     state.safetensors                every parameter in its stored dtype, FP32 masters, optimizer state
//     trainer.json                     steps done, the run's configuration, optimizer step count, loss
//                                      scaler, and each file's size and CRC-32
// Under --zero 1/2/3 on several ranks (the optimizer state, and for ZeRO-3 the weights, are spread
// over them) each rank writes its own state.rank-K.safetensors instead of state.safetensors, and there
// is no model.safetensors (the weights are in those files; a resumed run builds the model from
// config.json and the seed, then every rank loads its file). Such a checkpoint resumes with the same
// ranks and --zero.
// A run whose LoRA base is quantised (nf4/int8) writes no model.safetensors either: trainer.json's
// "quantized_base" names where the base came from (train/quantized_base_record.h), and --resume
// rebuilds it from there.
// Written into a hidden ".step-00000005.partial" directory (every file fsync'd) and renamed into place,
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
// latest `keep` complete ones (older ones are deleted). `run_config` is stored for --resume. Every
// rank calls it (rank 0 alone writes an unsharded checkpoint).
void write_training_checkpoint(const std::string& root, int64_t steps_done, const Model& model, Trainer& trainer,
                               const nlohmann::json& run_config, int keep, Communicator& comm);
// "state.safetensors", or rank K's "state.rank-K.safetensors" of a sharded checkpoint.
std::string state_file_name(int rank, int ranks, bool sharded);

// The newest checkpoint under root (root itself, root/checkpoints, or one step directory) whose
// files are all present with the recorded sizes and CRC-32s. Incomplete or damaged ones are
// skipped with a warning on stderr. Error if there is none.
CheckpointRef latest_checkpoint(const std::string& root);

// Puts the checkpoint's parameters, masters, optimizer and loss-scaler state into a trainer built
// for the same configuration (this rank's file of a sharded checkpoint).
void restore_training_checkpoint(const CheckpointRef& checkpoint, Trainer& trainer, const Communicator& comm);

}  // namespace frugal
