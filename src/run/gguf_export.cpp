#include "run/gguf_export.h"

#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/threading.h"
#include "io/gguf.h"
#include "models/causal_lm.h"
#include "models/gguf_model.h"
#include "models/lora_setup.h"
#include "models/model_io.h"
#include "run/run_spec.h"
#include "text/gguf_vocab.h"
#include "text/hf_tokenizer.h"
#include "text/tokenizer.h"

namespace frugal {

namespace {

struct OutputType {
  GgmlType matrices;
  uint32_t file_type;  // llama.cpp's general.file_type (enum llama_ftype)
};

OutputType output_type(const std::string& dtype) {
  if (dtype == "f32") return {GgmlType::F32, 0};
  if (dtype == "f16") return {GgmlType::F16, 1};
  if (dtype == "q8_0") return {GgmlType::Q8_0, 7};
  check(dtype == "bf16", "--dtype " + dtype + ": expected f32, f16, bf16 or q8_0");
  return {GgmlType::BF16, 32};
}

// A matrix's stored type: --dtype's, except q8_0 for rows that are not whole blocks (fp16 there, as
// llama.cpp's converter falls back); vectors (norms, biases) always fp32, as llama.cpp keeps them.
GgmlType tensor_type(const Shape& gguf_shape, GgmlType matrices) {
  if (gguf_shape.ndim() < 2) return GgmlType::F32;
  if (matrices == GgmlType::Q8_0 && gguf_shape[gguf_shape.ndim() - 1] % kQ8Block != 0) return GgmlType::F16;
  return matrices;
}

// The model to write: loaded in fp32, the adapter merged into it (into the dequantised weights when
// it was trained on a quantised base, as `lora merge` does).
std::unique_ptr<Model> merged_model(const ExportSpec& f) {
  std::unique_ptr<Model> model = load_model(f.model);
  if (f.adapter.empty()) {
    check(f.base_precision == "fp32", "--base-precision applies to the base of an --adapter");
    return model;
  }
  load_adapter(*model, f.adapter);
  if (const std::optional<QuantFormat> format = quantized_base_format(f.base_precision)) {
    dequantize_adapted_weights(*model, *format);
  } else {
    check(f.base_precision == "fp32", "--base-precision " + f.base_precision + ": expected fp32, nf4 or int8");
  }
  merge_lora(*model);
  return model;
}

// The model's tokenizer as llama.cpp's metadata: --tokenizer's, else the model's own (a directory's
// files or a GGUF's metadata); its BOS/EOS as the model's config.json overrides them.
void add_tokenizer(const ExportSpec& f, const Model& model, GgufWriter& out) {
  const std::string source = f.tokenizer.empty() ? f.model : f.tokenizer;
  check(tokenizer_present(source), "GGUF export: " + source + " has no tokenizer (llama.cpp needs one): pass "
                                   "--tokenizer DIR");
  const TokenizerFiles files = read_tokenizer_files(source);
  HfTokenizer tokenizer = HfTokenizer::from_json(files.tokenizer_json, source, files.config_json);
  tokenizer.apply_model_config(model.config());
  const int64_t rows = as_causal_lm(model)->vocab_size();
  check(tokenizer.vocab_size() <= rows, "GGUF export: the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                                            " tokens, more than the model's " + std::to_string(rows) + " embedding rows");
  write_tokenizer_metadata(files, tokenizer, rows, out);
}

void write_model(const ExportSpec& f) {
  const OutputType type = output_type(f.dtype);
  std::unique_ptr<Model> model = merged_model(f);
  GgufWriter out;
  write_architecture_metadata(*model, out, type.file_type);
  add_tokenizer(f, *model, out);
  // rope_freqs.weight: llama3 rope scaling, as llama.cpp's converter writes it (before the layers).
  const std::vector<float> factors = rope_frequency_factors(*model);
  Tensor rope_freqs;
  if (!factors.empty()) {
    rope_freqs = Tensor::empty({static_cast<int64_t>(factors.size())}, DType::F32, MemCategory::Workspace);
    std::copy(factors.begin(), factors.end(), rope_freqs.f32());
    out.add_tensor("rope_freqs.weight", rope_freqs, GgmlType::F32);
  }
  for (Param* p : base_state(*model)) {
    const GgufTensorPlace place = gguf_place(*model, p->name);
    const Shape shape = to_gguf_layout(p->value, place);  // in place: the model is ours to rearrange
    out.add_tensor(place.name, p->value, tensor_type(shape, type.matrices), shape);
  }
  out.write(f.out);
  std::printf("wrote %s: %s, %zu tensors in %s%s\n", f.out.c_str(), gguf_architecture(*model).c_str(),
              base_state(*model).size() + (factors.empty() ? 0 : 1), f.dtype.c_str(),
              f.adapter.empty() ? "" : " (adapter merged)");
}

// llama.cpp's LoRA GGUF: general.type "adapter", adapter.type "lora", adapter.lora.alpha, and per
// adapted weight W (GGUF name N) N.lora_a (r, in) and N.lora_b (out, r), each in W's GGUF layout
// (q/k rows permuted for Llama as W's are; GPT-2's Conv1D weights are (out, in) there, as PEFT's B A).
void write_adapter(const ExportSpec& f) {
  check(!f.adapter.empty(), "--adapter-only needs --adapter DIR");
  check(f.base_precision == "fp32", "--adapter-only writes the adapter as it is; --base-precision applies to a merge "
                                    "(llama.cpp applies the adapter to whatever base file it loads)");
  check(f.dtype == "f32" || f.dtype == "f16" || f.dtype == "bf16",
        "--adapter-only: --dtype " + f.dtype + " (adapters are written as f32, f16 or bf16)");
  const OutputType type = output_type(f.dtype);
  std::unique_ptr<Model> model = load_model(f.model);
  const LoraSettings settings = load_adapter(*model, f.adapter);
  GgufWriter out;
  out.set("general.architecture", GgufValue::of_string(gguf_architecture(*model)));
  out.set("general.type", GgufValue::of_string("adapter"));
  out.set("general.name", GgufValue::of_string("frugal LoRA adapter"));
  out.set("adapter.type", GgufValue::of_string("lora"));
  out.set("adapter.lora.alpha", GgufValue::of_f32(static_cast<float>(settings.config.alpha)));
  size_t count = 0;
  for (const auto& [name, linear] : model->adaptable_linears()) {
    LoraAdapter* adapter = linear->lora();
    if (!adapter) continue;
    GgufTensorPlace place = gguf_place(*model, name + ".weight");
    const Tensor& a = adapter->a().value;  // (r, in)
    const Tensor& b = adapter->b().value;  // (out, r)
    if (place.layout == GgufLayout::RopePairs) to_gguf_layout(b, place);  // B's rows are W's rows
    out.add_tensor(place.name + ".lora_a", a, tensor_type(a.shape(), type.matrices));
    out.add_tensor(place.name + ".lora_b", b, tensor_type(b.shape(), type.matrices));
    ++count;
  }
  out.write(f.out);
  std::printf("wrote %s: a LoRA adapter for %s, %zu adapted weights (r = %lld, alpha = %g)\n", f.out.c_str(),
              gguf_architecture(*model).c_str(), count, static_cast<long long>(settings.config.rank),
              settings.config.alpha);
}

}  // namespace

void export_model(const ExportSpec& f) {
  apply_threads(f.threads);
  check(f.format == "gguf", "--format " + f.format + ": expected gguf (Hugging Face directories: frugal train --save, "
                                                     "frugal lora merge)");
  check(!f.model.empty(), "frugal export needs --model (a model directory or GGUF file; with --adapter-only, the "
                          "adapter's base)");
  check_output_file(f.out, "--out");
  check(!std::filesystem::is_directory(f.out), "--out " + f.out + " is a directory; name the .gguf file to write");
  if (f.adapter_only) return write_adapter(f);
  write_model(f);
}

}  // namespace frugal
