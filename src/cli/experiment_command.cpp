// `frugal experiment NAME --out DIR`: reproduces a claim of frugal with measurements (JSON, a
// markdown report and PNG plots in DIR).
#include <cstdio>

#include "cli/commands.h"
#include "run/run_spec.h"
#include "run/spec_options.h"
#include "core/error.h"
#include "core/threading.h"
#include "experiments/checkpoint.h"
#include "experiments/grad_accum.h"
#include "experiments/lora.h"
#include "experiments/mixed_precision.h"

namespace frugal::cli {

namespace {
struct ExperimentFlags {
  std::string name, out_dir = "out/experiments";
  int threads = 0;
  int max_blocks = 512;
  double steps_scale = 1.0;
};

void run_experiment(const ExperimentFlags& f) {
  apply_threads(f.threads);
  prepare_output_dir(f.out_dir, "--out");
  const bool all = f.name == "all";
  if (all || f.name == "grad-accum") {
    run_grad_accum_experiment(f.out_dir);
    std::printf("wrote %s/grad-accum.{json,md,png}\n", f.out_dir.c_str());
  }
  if (all || f.name == "checkpoint") {
    run_checkpoint_experiment(f.out_dir, f.max_blocks);
    std::printf("wrote %s/checkpoint.{json,md} and checkpoint-*.png\n", f.out_dir.c_str());
  }
  if (all || f.name == "lora") {
    run_lora_experiment(f.out_dir, f.steps_scale);
    std::printf("wrote %s/lora.{json,md,png}\n", f.out_dir.c_str());
  }
  if (all || f.name == "mixed-precision") {
    run_mixed_precision_experiment(f.out_dir, f.steps_scale);
    std::printf("wrote %s/mixed-precision.{json,md} and mixed-precision-*.png\n", f.out_dir.c_str());
  }
}
}  // namespace

void register_experiment(CLI::App& app) {
  auto flags = std::make_shared<ExperimentFlags>();
  CLI::App* cmd = app.add_subcommand("experiment", "reproduce a claim with measurements: JSON, markdown and plots");
  cmd->add_option("name", flags->name, "grad-accum | checkpoint | lora | mixed-precision | all")
      ->required()
      ->check(CLI::IsMember({"grad-accum", "checkpoint", "lora", "mixed-precision", "all"}));
  cmd->add_option("--out", flags->out_dir, "output directory")->capture_default_str();
  add_threads_option(*cmd, flags->threads);
  cmd->add_option("--max-blocks", flags->max_blocks, "checkpoint: the deepest MLP chain (32..4096; exponents are fitted over 16..min(256, this))")
      ->check(CLI::Range(32, 4096))->capture_default_str();
  cmd->add_option("--steps-scale", flags->steps_scale, "lora, mixed-precision: scale every training run's steps (quick runs: 0.1)")
      ->check(CLI::Range(0.01, 10.0))->capture_default_str();
  cmd->callback([flags] { run_experiment(*flags); });
}

}  // namespace frugal::cli
