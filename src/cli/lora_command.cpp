// `frugal lora merge | extract`: the flags of run/lora_tools.h.
#include "cli/commands.h"
#include "run/lora_tools.h"
#include "run/spec_options.h"

namespace frugal::cli {

void register_lora(CLI::App& app) {
  auto flags = std::make_shared<LoraToolSpec>();
  CLI::App* cmd = app.add_subcommand("lora", "merge a LoRA adapter into a model, or extract one by truncated SVD");
  cmd->require_subcommand(1);
  CLI::App* merge = cmd->add_subcommand("merge", "W' = W + (alpha / r) B A: a plain model directory");
  merge->add_option("--model", flags->model_dir, "base model directory")->required();
  merge->add_option("--adapter", flags->adapter_dir, "PEFT adapter directory")->required();
  merge->add_option("--out", flags->out_dir, "merged model directory")->required();
  merge->add_option("--base-precision", flags->base_precision,
                    "the base the adapter was fine-tuned on: fp32 | nf4 | int8 (merged into the dequantised weights)")
      ->check(CLI::IsMember({"fp32", "nf4", "int8"}))->capture_default_str();
  merge->add_option("--dtype", flags->dtype, "the merged model's tensors: fp32 | bf16 | fp16")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}))->capture_default_str();
  add_threads_option(*merge, flags->threads);
  merge->callback([flags] { lora_merge(*flags); });
  CLI::App* extract = cmd->add_subcommand("extract", "rank-R adapter from tuned - base (truncated SVD per module)");
  extract->add_option("--base", flags->base_dir, "base model directory")->required();
  extract->add_option("--tuned", flags->tuned_dir, "fine-tuned model directory")->required();
  extract->add_option("--rank", flags->rank, "adapter rank")->required()->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  extract->add_option("--alpha", flags->alpha, "lora_alpha of the adapter (default: rank)")->check(CLI::PositiveNumber);
  extract->add_option("--targets", flags->targets, "modules (default: GPT c_attn,c_proj,c_fc; Llama and MLP every linear layer)");
  extract->add_option("--out", flags->out_dir, "adapter directory to write")->required();
  add_threads_option(*extract, flags->threads);
  extract->callback([flags] { lora_extract(*flags); });
}

}  // namespace frugal::cli
