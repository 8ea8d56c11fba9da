#include "run/generation_model.h"

#include "core/error.h"
#include "models/lora_setup.h"
#include "models/model_io.h"
#include "run/model_builder.h"
#include "text/tokenizer.h"

namespace frugal {

namespace {

// An adapter is merged into the weights for zero-overhead inference (a quantised base keeps it beside).
std::unique_ptr<Model> adapted_model(const RunSpec& f) {
  std::unique_ptr<Model> model;
  if (f.lora.base_precision == "fp32") {
    model = load_model(f.model.model_dir);
    if (!f.lora.adapter.empty()) load_adapter(*model, f.lora.adapter);
  } else {  // the base stored as training stored it (nf4/int8: quantised while loading)
    ModelSpec base;
    base.model_dir = f.model.model_dir;
    LoraSpec lora;
    lora.adapter = f.lora.adapter;
    lora.base_precision = f.lora.base_precision;
    model = build_model(base, "fortunes", 0, /*with_weights=*/true, lora);
  }
  if (!f.lora.adapter.empty()) merge_lora(*model);
  return model;
}

}  // namespace

GenerationModel load_generation_model(const RunSpec& f, const std::string& command) {
  GenerationModel g;
  g.model = adapted_model(f);
  g.lm = as_causal_lm(*g.model);
  check(g.lm, "frugal " + command + " needs a language model (gpt, llama), " + f.model.model_dir + " holds a " +
                  g.model->arch());
  ModelSpec tokenizer_spec;
  tokenizer_spec.model_dir = f.model.model_dir;
  tokenizer_spec.tokenizer = f.model.tokenizer;
  g.tokenizer = model_tokenizer(tokenizer_spec);
  const int64_t vocab = g.lm->vocab_size();
  check(g.tokenizer || vocab >= 256, command + ": byte-level text needs vocab_size >= 256 (or a --tokenizer)");
  if (g.tokenizer)
    check(g.tokenizer->vocab_size() <= vocab, command + ": the tokenizer has " + std::to_string(g.tokenizer->vocab_size()) +
                                                  " tokens, more than the model's vocab_size " + std::to_string(vocab));
  return g;
}

}  // namespace frugal
