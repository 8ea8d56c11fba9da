#pragma once
// The language model and tokenizer that `frugal generate` and `frugal chat` sample from (and
// frugal::generate(), Python's frugal.generate()).
#include <memory>
#include <string>

#include "models/causal_lm.h"
#include "models/model.h"
#include "run/run_spec.h"

namespace frugal {

class TextTokenizer;

struct GenerationModel {
  std::unique_ptr<Model> model;
  CausalLm* lm = nullptr;              // the model as a language model
  TextTokenizer* tokenizer = nullptr;  // --tokenizer or the model directory's; nullptr: byte-level text
};

// The model as --model, --adapter and --base-precision say (an adapter merged into the weights) and
// its tokenizer. Error naming `command` when the model is no language model, or when the tokenizer
// has more tokens than the model (or there is none and the vocabulary is smaller than 256 bytes).
GenerationModel load_generation_model(const RunSpec& spec, const std::string& command);

}  // namespace frugal
