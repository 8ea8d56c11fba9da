// `frugal plan`: predicts training memory by category for a configuration without running it.
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "core/threading.h"
#include "core/units.h"
#include "report/memory_table.h"
#include "report/summary.h"
#include "train/planner.h"

namespace frugal::cli {

namespace {
struct PlanFlags {
  ModelFlags model;
  PrecisionFlags precision;
  CheckpointFlags checkpoint;
  LoraFlags lora;
  TrainOptions options;
  int threads = 0;
  std::string data = "fortunes";
  bool json = false;
};

void run_plan(PlanFlags& f) {
  apply_checkpoint_flags(f.checkpoint, f.options);
  apply_precision_flags(f.precision, f.options);
  apply_threads(f.threads);  // per-thread scratch is part of the workspace
  const MemoryPlan plan = plan_training_memory(
      [&] { return build_model(f.model, f.data, f.options.seed, /*with_weights=*/false, f.lora, nullptr,
                               storage_flags(f.options)); },
      f.options);
  if (f.json) {
    nlohmann::json j{{"predicted_memory", memory_json(plan.peak)},
                     {"forward_calls", plan.forward_calls},
                     {"layer_count", plan.layer_count},
                     {"kernels", plan.kernels}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("predicted memory, --checkpoint %s, --precision %s\n", f.options.checkpoint.c_str(),
              precision_name(f.options.precision).c_str());
  print_memory_table({"predicted"}, {plan.peak});
  std::printf("forward calls per step: %lld over %lld blocks\n", static_cast<long long>(plan.forward_calls),
              static_cast<long long>(plan.layer_count));
  print_kernels(plan.kernels);
}
}  // namespace

void register_plan(CLI::App& app) {
  auto flags = std::make_shared<PlanFlags>();
  flags->options.micro_batch = 16;
  CLI::App* cmd = app.add_subcommand("plan", "predict training memory by category without running");
  add_model_flags(*cmd, flags->model);
  add_training_flags(*cmd, flags->options, flags->threads);
  add_checkpoint_flags(*cmd, flags->checkpoint);
  add_lora_flags(*cmd, flags->lora);
  add_precision_flags(*cmd, flags->precision);
  cmd->add_option("--data", flags->data, "as for train (decides the MLP's input and output sizes)");
  cmd->add_flag("--json", flags->json, "print JSON instead of a table");
  cmd->callback([flags] { run_plan(*flags); });
}

}  // namespace frugal::cli
