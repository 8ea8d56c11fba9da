#pragma once
// Model directories: config.json + model.safetensors. GPT uses HF GPT-2's config keys, names and
// layouts, so `from_pretrained`-style directories load here and ours load there.
#include <memory>
#include <string>

#include "models/model.h"

namespace frugal {

// Builds the model a config.json describes (GPT: HF GPT-2 keys; others: "frugal_arch").
std::unique_ptr<Model> model_from_config(const nlohmann::json& config);

// Loads config.json and model.safetensors from dir. Every tensor of the model must be present
// with the shape the config implies. GPT files may carry a "transformer." prefix, an
// "lm_head.weight" (tied: must equal wte) and attention mask buffers, which are ignored.
std::unique_ptr<Model> load_model(const std::string& dir);
// The weights half of load_model: dir's model.safetensors into the model's tensors, converted per
// tensor into whatever type each tensor was built in (models/param_storage.h).
// Placeholders (models/param_storage.h) are checked for their shape and left as they are.
void load_weights(Model& model, const std::string& dir);
// One tensor of dir's model.safetensors (by its model name; a GPT file's prefix allowed) into `into`.
void read_weight(const Model& model, const std::string& dir, const std::string& name, const Tensor& into);

// Writes config.json and model.safetensors (atomically each) into dir, creating it. Error for a
// model with a quantised base (its weights are not all there to write).
void save_model(const Model& model, const std::string& dir);

}  // namespace frugal
