#pragma once
// The model, tokenizer and LoRA adapters a run spec describes (run/run_spec.h): a fresh
// architecture (weights from the seed) or a loaded directory, each tensor born in the type the run
// keeps it in.
#include <memory>
#include <string>

#include "models/lora_setup.h"
#include "models/model.h"
#include "run/run_spec.h"

namespace frugal {

class TextTokenizer;

// The tokenizer directory of the spec: --tokenizer, else the --model directory when it holds
// tokenizer files, else "" (byte-level text). Error for a --tokenizer without tokenizer files.
std::string tokenizer_dir(const ModelSpec& spec);
// That tokenizer, loaded once per process (nullptr when there is none).
TextTokenizer* model_tokenizer(const ModelSpec& spec);

// The model of --arch (fresh, weights from the seed) or --model DIR (loaded), without LoRA, each
// tensor born in the type the run keeps it in (LoRA settings say which base weights are frozen and
// adapted). With with_weights = false the model is only built (for the planner's measuring ledger).
std::unique_ptr<Model> build_base_model(const ModelSpec& spec, const std::string& data, uint64_t seed,
                                        bool with_weights, const LoraSpec& lora = {}, const StorageSpec& storage = {});

// Chat examples (`examples`) run the fused attention kernel, the only one that masks them from each
// other: a language model's Auto kernel becomes Flash, so its schedule and report see what runs.
// (A .jsonl --data does this in build_model already; --data-format makes any file chat data.)
void use_fused_attention_for_examples(Model& model, bool examples);

// build_base_model, then with LoRA the adapters attached (or loaded) and the base frozen;
// `lora_used` receives the settings when it is not null.
std::unique_ptr<Model> build_model(const ModelSpec& spec, const std::string& data, uint64_t seed,
                                   bool with_weights, const LoraSpec& lora = {}, LoraSettings* lora_used = nullptr,
                                   const StorageSpec& storage = {});

}  // namespace frugal
