#pragma once
// The settings that define a run (model, data, training, precision, LoRA, steps) as {key: value}
// with the config file's keys: the summary's and `plan --json`'s "run" record it as "settings", a
// training-state checkpoint as its "run", and `--config` reads any of them back, so a run can be
// replayed. --resume takes every setting the command line does not give from its checkpoint, and
// refuses given ones that contradict it.
#include <string>
#include <nlohmann/json.hpp>

#include "run/run_spec.h"
#include "train/checkpoint.h"

namespace frugal {

nlohmann::json run_settings(const RunSpec& spec);

// Whether a recorded setting holds the value that means "not set" (a size of 0, dropout -1, an empty
// path): records leave those out, and reading one written before they did drops them.
bool unset_setting(const std::string& key, const nlohmann::json& value);

// run_settings plus "world_size": what a training-state checkpoint records.
nlohmann::json checkpoint_record(const RunSpec& spec, int world_size);

// --resume: refuses given settings that contradict the checkpoint's run (and a different world
// size), takes every other one from it, and points the model at the checkpoint's model directory.
// Returns the settings taken, as "--flag value" text for the log.
std::string adopt_checkpoint_settings(RunSpec& spec, const CheckpointRef& checkpoint, int world_size);

}  // namespace frugal
