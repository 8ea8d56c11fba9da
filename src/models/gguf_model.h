#pragma once
// The language models frugal trains, as llama.cpp's GGUF files describe them (issue 35): which
// architecture ("gpt2", "llama", "qwen2", "qwen3"), its metadata keys, and each tensor's GGUF name and
// layout. Table-driven in both directions: export (a model -> metadata + tensors) and import
// (metadata -> the config.json of the same model, tensors -> the model's tensors).
//
// Layouts that differ from Hugging Face's (frugal keeps Hugging Face's):
//   - GPT-2's Conv1D weights are stored (in, out); GGUF holds (out, in) like every other linear layer.
//   - Llama's q_proj/k_proj rows: Hugging Face rotates the pairs (i, i + head_dim/2) of each head
//     (the "neox" convention), llama.cpp's "llama" architecture rotates adjacent pairs (2i, 2i+1);
//     GGUF's rows are permuted so that llama.cpp's pairs are Hugging Face's. Qwen2/Qwen3 run the neox
//     convention in llama.cpp, their rows stay as they are.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "models/model.h"

namespace frugal {

// "gpt2", "llama", "qwen2" or "qwen3"; Error naming the model's architecture for others.
std::string gguf_architecture(const Model& model);

enum class GgufLayout {
  Same,        // as frugal stores it
  Transposed,  // frugal (in, out), GGUF (out, in)
  RopePairs,   // rows of each head reordered: GGUF row 2j + s = frugal row s * head_dim / 2 + j
};

struct GgufTensorPlace {
  std::string name;  // llama.cpp's, e.g. "blk.0.attn_q.weight"
  GgufLayout layout = GgufLayout::Same;
  int64_t heads = 0;  // RopePairs: the heads the rows hold
};

// Where the model's tensor `name` (its state() name) goes in a GGUF; Error for a tensor without a place.
GgufTensorPlace gguf_place(const Model& model, const std::string& name);

// `value` (fp32, frugal's layout) rearranged in place into GGUF's layout; the returned shape is the
// row-major shape GGUF stores (Transposed: the dimensions swapped).
Shape to_gguf_layout(const Tensor& value, const GgufTensorPlace& place);
// The inverse: `stored` (fp32, GGUF's layout and row-major shape) rearranged in place into frugal's.
void from_gguf_layout(const Tensor& stored, const Shape& gguf_shape, const GgufTensorPlace& place);

// general.architecture, the architecture's keys (context, embedding and feed-forward lengths, block
// count, head counts, key/value lengths, rope dimension and base, norm epsilon) and general.file_type.
void write_architecture_metadata(const Model& model, GgufWriter& out, uint32_t file_type);
// A Llama with llama3 rope scaling: rope_freqs.weight's values (per rotated pair, the factor that
// divides its frequency), as llama.cpp's converter computes them; empty otherwise.
std::vector<float> rope_frequency_factors(const Model& model);

// The tensors of the GGUF at `path` into the model's state (converted into each tensor's type, layouts
// undone). Every tensor of the model must be there with the shape the metadata implies; a tensor the
// model has no place for is an Error, except rope_freqs.weight (read with the config) and a GPT-2
// output.weight equal to token_embd.weight (a tied head written out). Placeholders are checked for
// their shape and left as they are.
void load_gguf_weights(Model& model, const std::string& path);
// One tensor (by the model's name) into `into` (fp32, frugal's shape): a quantised base reads its
// weights one at a time through this.
void read_gguf_weight(const Model& model, const std::string& path, const std::string& name, const Tensor& into);

// The config.json (Hugging Face's keys) of the model a GGUF file holds. Errors name the file and the
// architecture, key or tensor frugal cannot take (other architectures, rope scaling other than
// llama3's, a missing key).
nlohmann::json config_from_gguf(const GgufFile& file);

}  // namespace frugal
