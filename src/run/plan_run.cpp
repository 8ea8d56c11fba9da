// A plan of a spec: `frugal plan`, frugal::plan() and Python's frugal.plan().
#include <algorithm>
#include <cstdio>
#include <set>

#include "run/plan_run.h"

#include "run/autopilot_spec.h"
#include "run/model_builder.h"
#include "run/rates_process.h"
#include "run/run_record.h"
#include "core/error.h"
#include "core/threading.h"
#include "core/units.h"
#include "report/memory_table.h"
#include "report/summary.h"
#include "train/machine_rates.h"
#include "train/planner.h"
#include "train/precision.h"
#include "train/run_description.h"

namespace frugal {

namespace {
// One row per configuration: what it is, its predicted memory and step time.
void print_candidates(const AutopilotResult& result, size_t rows) {
  std::printf("  %-12s %-6s %-20s %-9s %14s %14s\n", "micro-batch", "accum", "checkpoint", "precision", "memory",
              "step time");
  for (size_t i = 0; i < std::min(rows, result.candidates.size()); ++i) {
    const Candidate& c = result.candidates[i];
    if (!c.fits) break;
    std::string strategy = c.options.checkpoint;
    if (c.options.activation_budget > 0)
      strategy += " (" + format_bytes(static_cast<double>(c.options.activation_budget)) + ")";
    std::printf("  %-12lld %-6lld %-20s %-9s %14s %14s%s\n", static_cast<long long>(c.options.micro_batch),
                static_cast<long long>(c.options.accum), strategy.c_str(), precision_name(c.options.precision).c_str(),
                format_bytes(static_cast<double>(c.plan.peak.total)).c_str(), format_seconds(c.step_seconds).c_str(),
                i == 0 ? "   <- chosen" : "");
  }
}

nlohmann::json candidate_json(const Candidate& c) {
  return {{"micro_batch", c.options.micro_batch},          {"accum", c.options.accum},
          {"checkpoint", c.options.checkpoint},             {"activation_budget", c.options.activation_budget},
          {"precision", precision_name(c.options.precision)}, {"optimizer", c.options.optimizer},
          {"predicted_memory", memory_json(c.plan.peak)},
          {"predicted_step_time_s", c.step_seconds},        {"fits", c.fits}};
}

// --memory-budget: the configurations that fit, fastest first, and the command that runs the chosen one.
nlohmann::json autopilot_plan(RunSpec& f, bool print) {
  const AutopilotInputs in{f.model, f.data, f.lora, f.options, f.given};
  const AutopilotRequest request = autopilot_request(f.memory, in);
  const AutopilotResult result = run_autopilot(request, in);
  const Candidate& chosen = *result.chosen();
  const std::string command = train_command_line(chosen, f.memory.budget, f.command_line);
  if (print) report_rates_measurement();
  nlohmann::json j{{"memory_budget", request.budget_bytes}, {"batch_size", request.batch_size},
                   {"configurations", result.candidates.size()}, {"fitting", result.fitting},
                   {"search_seconds", result.search_seconds}, {"chosen", candidate_json(chosen)},
                   {"command", command}};
  for (const Candidate& c : result.candidates) j["candidates"].push_back(candidate_json(c));
  if (!print || f.plan.json) return j;
  std::printf("memory budget %s, batch %lld samples per step: %zu configurations planned in %s, %lld fit\n",
              format_bytes(static_cast<double>(request.budget_bytes)).c_str(), static_cast<long long>(request.batch_size),
              result.candidates.size(), format_seconds(result.search_seconds).c_str(),
              static_cast<long long>(result.fitting));
  print_candidates(result, 5);
  std::printf("chosen: %s, predicted %s of %s and %s per step\n", chosen.describe().c_str(),
              format_bytes(static_cast<double>(chosen.plan.peak.total)).c_str(),
              format_bytes(static_cast<double>(request.budget_bytes)).c_str(), format_seconds(chosen.step_seconds).c_str());
  print_memory_table({"predicted"}, {chosen.plan.peak});
  std::printf("run it:\n  %s\n", command.c_str());
  return j;
}

// --ranks N: each rank's predicted peaks (memory only: the step time of a job is not modelled).
nlohmann::json rank_plans(const RunSpec& f, const std::vector<MemoryPlan>& per_rank, bool print) {
  nlohmann::json j{{"world_size", f.plan.ranks}, {"zero", f.options.zero}};
  for (size_t r = 0; r < per_rank.size(); ++r)
    j["ranks"].push_back({{"rank", r}, {"predicted_memory", memory_json(per_rank[r].peak)}});
  if (!print || f.plan.json) return j;
  std::printf("predicted memory per rank of %d (--zero %d), --checkpoint %s, --precision %s\n", f.plan.ranks,
              f.options.zero, f.options.checkpoint.c_str(), precision_name(f.options.precision).c_str());
  std::vector<std::string> names;
  std::vector<MemorySnapshot> peaks;
  for (size_t r = 0; r < per_rank.size(); ++r) {
    names.push_back("rank " + std::to_string(r));
    peaks.push_back(per_rank[r].peak);
  }
  print_memory_table(names, peaks);
  return j;
}

}  // namespace

nlohmann::json plan_run(RunSpec& f, bool print) {
  resolve_spec(f, Command::Plan);
  apply_threads(f.threads);  // per-thread scratch is part of the workspace
  if (wants_autopilot(f.memory)) return autopilot_plan(f, print);
  // Every rank of the job; the one with the largest total is the plan that must fit.
  std::vector<MemoryPlan> per_rank;
  for (int r = 0; r < f.plan.ranks; ++r) {
    const std::unique_ptr<Communicator> rank = planning_communicator(r, f.plan.ranks);
    per_rank.push_back(plan_training_memory(
        [&] {
          std::unique_ptr<Model> model = build_model(f.model, f.data, f.options.seed, /*with_weights=*/false, f.lora,
                                                     nullptr, storage_spec(f.options, rank.get()));
          check_settings_apply(f.options, *model);
          return model;
        },
        f.options, rank.get()));
  }
  const MemoryPlan& plan = *std::max_element(per_rank.begin(), per_rank.end(), [](const MemoryPlan& a, const MemoryPlan& b) {
    return a.peak.total < b.peak.total;
  });
  const StepTimePrediction time = predict_step_time(plan.work, machine_rates());
  if (print) report_rates_measurement();
  if (f.plan.ranks > 1) return rank_plans(f, per_rank, print);
  nlohmann::json j{{"predicted_memory", memory_json(plan.peak)},
                   {"predicted_step_time_s", time.total()},
                   {"forward_calls", plan.forward_calls},
                   {"layer_count", plan.layer_count},
                   {"kernels", plan.kernels},
                   {"run", plan.run}};
  j["run"]["settings"] = run_settings(f);  // (--config PLAN.json trains what was planned)
  if (!print || f.plan.json) return j;
  std::printf("predicted memory, --checkpoint %s, --precision %s\n", f.options.checkpoint.c_str(),
              precision_name(f.options.precision).c_str());
  print_memory_table({"predicted"}, {plan.peak});
  std::printf("forward calls per step: %lld over %lld blocks\n", static_cast<long long>(plan.forward_calls),
              static_cast<long long>(plan.layer_count));
  print_kernels(plan.kernels);
  std::printf("predicted step time: %s (matrix products %s, memory passes %s, optimizer %s, per-layer overhead %s)\n",
              format_seconds(time.total()).c_str(), format_seconds(time.gemm_s).c_str(),
              format_seconds(time.memory_s).c_str(), format_seconds(time.optimizer_s).c_str(),
              format_seconds(time.overhead_s).c_str());
  return j;
}

}  // namespace frugal
