// `frugal export`: the flags of run/gguf_export.h.
#include "cli/commands.h"
#include "run/gguf_export.h"
#include "run/spec_options.h"

namespace frugal::cli {

void register_export(CLI::App& app) {
  auto flags = std::make_shared<ExportSpec>();
  CLI::App* cmd = app.add_subcommand("export", "write a model (or a LoRA adapter) as a GGUF file for llama.cpp");
  cmd->add_option("--model", flags->model, "model directory or GGUF file (with --adapter-only: the adapter's base)")
      ->required();
  cmd->add_option("--adapter", flags->adapter, "PEFT adapter directory: merged into the model, or --adapter-only");
  cmd->add_flag("--adapter-only", flags->adapter_only, "write the adapter alone, as llama.cpp's LoRA GGUF for its base");
  cmd->add_option("--tokenizer", flags->tokenizer, "tokenizer directory (default: the model's)");
  cmd->add_option("--base-precision", flags->base_precision,
                  "the base the adapter was fine-tuned on: fp32 | nf4 | int8 (merged into the dequantised weights)")
      ->check(CLI::IsMember({"fp32", "nf4", "int8"}))->capture_default_str();
  cmd->add_option("--format", flags->format, "output format: gguf")->check(CLI::IsMember({"gguf"}))->capture_default_str();
  cmd->add_option("--dtype", flags->dtype, "the matrices' type: f32 | f16 | bf16 | q8_0 (norms and biases stay f32)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}))->capture_default_str();
  cmd->add_option("--out", flags->out, "the .gguf file to write")->required();
  add_threads_option(*cmd, flags->threads);
  cmd->callback([flags] { export_model(*flags); });
}

}  // namespace frugal::cli
