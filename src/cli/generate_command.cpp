// `frugal generate`: samples text from a GPT model directory (byte-level tokens).
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "core/threading.h"
#include "models/gpt.h"
#include "models/lora_setup.h"
#include "models/model_io.h"
#include "train/generate.h"

namespace frugal::cli {

namespace {
struct GenerateFlags {
  std::string model_dir, prompt, adapter;
  SampleOptions sample;
  int threads = 0;
};

void run_generate(GenerateFlags& f) {
  apply_threads(f.threads);
  std::unique_ptr<Model> model = load_model(f.model_dir);
  if (!f.adapter.empty()) {
    load_adapter(*model, f.adapter);
    merge_lora(*model);  // zero-overhead inference: the adapter folded into the weights
  }
  check(model->arch() == "gpt", "frugal generate needs a GPT model, " + f.model_dir + " holds a " + model->arch());
  const std::string text = generate_text(static_cast<Gpt&>(*model), f.prompt, f.sample);
  std::printf("%s%s\n", f.prompt.c_str(), text.c_str());
}
}  // namespace

void register_generate(CLI::App& app) {
  auto flags = std::make_shared<GenerateFlags>();
  CLI::App* cmd = app.add_subcommand("generate", "sample text from a GPT model directory");
  cmd->add_option("--model", flags->model_dir, "model directory")->required();
  cmd->add_option("--prompt", flags->prompt, "text to continue");
  cmd->add_option("--adapter", flags->adapter, "a PEFT LoRA adapter to merge before sampling");
  cmd->add_option("--tokens", flags->sample.tokens, "bytes to generate")->check(CLI::Range(0, 1 << 20))->capture_default_str();
  cmd->add_option("--temperature", flags->sample.temperature, "0: greedy")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--top-k", flags->sample.top_k, "sample among the k most likely (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", flags->sample.seed, "sampling seed");
  add_threads_flag(*cmd, flags->threads);
  cmd->callback([flags] { run_generate(*flags); });
}

}  // namespace frugal::cli
