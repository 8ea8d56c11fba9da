#pragma once
// LoRA on a model: which linear layers get adapters, freezing the base, and PEFT adapter
// directories (adapter_config.json + adapter_model.safetensors) in and out.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kernels/quantized_matrix.h"

#include "models/model.h"
#include "nn/lora.h"

namespace frugal {

struct LoraSettings {
  LoraConfig config;
  std::vector<std::string> targets;  // PEFT target_modules: a module matches "t" if its name is t or ends in ".t"
};

// "c_attn,c_proj" -> {"c_attn", "c_proj"}; Error on empty items.
std::vector<std::string> parse_lora_targets(const std::string& csv);

// Freezes every parameter of the model and attaches an adapter to each matching linear layer.
// Error if a target matches no module (naming the modules there are).
void apply_lora(Model& model, const LoraSettings& settings, uint64_t seed);

// The weight names ("h.0.attn.c_attn.weight") of the linear layers `targets` would adapt.
std::vector<std::string> adapted_weight_names(const Model& model, const std::vector<std::string>& targets);

// The adapters of a model (after apply_lora or load_adapter).
std::vector<LoraAdapter*> lora_adapters(const Model& model);

// Model state without adapters (what a model directory holds).
std::vector<Param*> base_state(const Model& model);

// Writes dir/adapter_config.json and dir/adapter_model.safetensors (PEFT format; fan_in_fan_out is
// true for GPT-2's Conv1D layers).
void save_adapter(const Model& model, const LoraSettings& settings, const std::string& dir);

// The settings in dir/adapter_config.json (rank, alpha, dropout, targets), for a model of `arch`.
// Error for a missing file, a variant frugal does not implement, or another architecture's adapter.
LoraSettings read_adapter_config(const std::string& dir, const std::string& arch);

// Reads a PEFT adapter directory, applies LoRA with its settings and loads A and B. Error when the
// adapter does not fit the model (unknown keys, wrong shapes, targets that match nothing).
LoraSettings load_adapter(Model& model, const std::string& dir);

// --base-precision: stores the frozen weights of the adapted linear layers in fp16 or bf16 (F32 is
// a no-op). Their forward and backward widen them to fp32 copies in workspace.
void store_adapted_weights_as(Model& model, DType dtype);

// W += (alpha / r) B A for every adapter, in each layer's own layout; the adapters are removed and
// the base parameters become trainable again (a plain model).
void merge_lora(Model& model);

// --base-precision nf4|int8: each adapted linear's weight, one at a time, quantised into the linear.
// A placeholder (models/param_storage.h) is first filled into an fp32 scratch of its shape by `fill`
// (parameter index, scratch; not in measure mode), one buffer of the largest such weight's size
// reused for all and freed at the end, so the fp32 model never exists as a whole; a weight already
// held in fp32 is quantised from itself.
void quantize_adapted_weights(Model& model, const std::vector<std::string>& adapted, QuantFormat format,
                              const std::function<void(size_t, const Tensor&)>& fill);
// --quantize-head: a frozen LM head of the model's own (untied, not the embedding) quantised into the
// head, read from its current storage a chunk of rows at a time (no fp32 copy of the V x D table).
void quantize_lm_head(Model& model, QuantFormat format);
// "nf4" / "int8" as a format; nothing for the other --base-precision values.
std::optional<QuantFormat> quantized_base_format(const std::string& base_precision);
// Each adapted weight (fp32) replaced by deq(q(W)): an adapter trained on a quantised base learnt the
// difference from those weights, so `lora merge` and the GGUF export merge it into them.
void dequantize_adapted_weights(Model& model, QuantFormat format);

}  // namespace frugal
