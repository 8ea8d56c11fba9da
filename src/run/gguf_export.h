#pragma once
// `frugal export --format gguf` (issue 35): a model (a directory or a GGUF; an adapter merged first,
// a quantised base dequantised) as a GGUF file llama.cpp runs, or a LoRA adapter alone as llama.cpp's
// LoRA GGUF for its base. The names, layouts and metadata are models/gguf_model.h's and
// text/gguf_vocab.h's.
#include <string>

namespace frugal {

struct ExportSpec {
  std::string model;               // --model: a model directory or a GGUF file
  std::string adapter;             // --adapter: a PEFT adapter directory
  std::string tokenizer;           // --tokenizer: another tokenizer than the model's
  std::string base_precision = "fp32";  // the base the adapter was trained on (fp32 | nf4 | int8)
  std::string format = "gguf";
  std::string dtype = "f32";       // f32 | f16 | bf16 | q8_0: the matrices' type (1-D tensors stay f32)
  bool adapter_only = false;       // --adapter-only: the adapter as llama.cpp's LoRA GGUF, not merged
  std::string out;
  int threads = 0;
};

// Writes spec.out atomically and prints one line saying what it wrote. Errors (one line): a model
// GGUF cannot hold, a tokenizer llama.cpp would not reproduce, an output that cannot be written.
void export_model(const ExportSpec& spec);

}  // namespace frugal
