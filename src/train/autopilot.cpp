#include "train/autopilot.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/error.h"

namespace frugal {

namespace {

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> d;
  for (int64_t k = 1; k <= n; ++k)
    if (n % k == 0) d.push_back(k);
  return d;
}

Candidate plan_candidate(const ConfiguredModelFactory& make_model, const TrainOptions& o, int64_t budget,
                         const MachineRates& rates) {
  Candidate c;
  c.options = o;
  c.plan = plan_training_memory([&] { return make_model(o); }, o);
  c.step_seconds = predict_step_time(c.plan.work, rates).total();
  c.fits = static_cast<int64_t>(c.plan.peak.total) <= budget;
  return c;
}

// `--checkpoint optimal` with the activation budget the rest of the budget leaves: what the
// memory-poor plan holds besides activations at its peak is (about) what every strategy holds, so
// the remainder goes to activations; an overshoot is taken off and planned again (three tries).
// Nothing when no schedule fits that little.
std::optional<Candidate> plan_optimal(const ConfiguredModelFactory& make_model, TrainOptions o,
                                      const Candidate& memory_poor, int64_t budget, const MachineRates& rates) {
  const MemoryPlan& mp = memory_poor.plan;
  const int64_t other = static_cast<int64_t>(mp.peak.total) - static_cast<int64_t>(mp.at_peak[MemCategory::Activations]);
  o.checkpoint = "optimal";
  o.activation_budget = budget - other;
  for (int attempt = 0; attempt < 3 && o.activation_budget > 0; ++attempt) {
    Candidate c;
    try {
      c = plan_candidate(make_model, o, budget, rates);
    } catch (const Error&) {
      return std::nullopt;  // below the smallest feasible activation budget
    }
    if (c.fits) return c;
    o.activation_budget -= static_cast<int64_t>(c.plan.peak.total) - budget;
  }
  return std::nullopt;
}

// Every strategy at one micro-batch and precision.
void plan_strategies(const ConfiguredModelFactory& make_model, const TrainOptions& o, const AutopilotRequest& request,
                     const MachineRates& rates, std::vector<Candidate>& out) {
  const auto with = [&](const std::string& strategy) {
    TrainOptions s = o;
    s.checkpoint = strategy;
    s.activation_budget = 0;
    return plan_candidate(make_model, s, request.budget_bytes, rates);
  };
  if (!request.checkpoint.empty() && (request.checkpoint != "optimal" || o.activation_budget > 0)) {
    TrainOptions fixed = o;  // the user's strategy (and activation budget) as given
    fixed.checkpoint = request.checkpoint;
    out.push_back(plan_candidate(make_model, fixed, request.budget_bytes, rates));
    return;
  }
  const Candidate memory_poor = with("memory-poor");
  if (request.checkpoint.empty()) {
    out.push_back(with("store-all"));
    out.push_back(with("sqrt"));
    out.push_back(memory_poor);
  }
  // Optimal only where it can differ: store-all does not fit, and memory-poor does.
  const bool store_all_fits = request.checkpoint.empty() && out[out.size() - 3].fits;
  if (!memory_poor.fits || store_all_fits) return;
  if (std::optional<Candidate> optimal = plan_optimal(make_model, o, memory_poor, request.budget_bytes, rates))
    out.push_back(std::move(*optimal));
}

}  // namespace

std::string Candidate::describe() const {
  std::string s = "micro-batch " + std::to_string(options.micro_batch) + " x " + std::to_string(options.accum) + ", " +
                  options.checkpoint;
  s += ", " + precision_name(options.precision);
  return options.optimizer == "adamw" ? s : s + ", " + options.optimizer;
}

const Candidate* AutopilotResult::smallest() const {
  const Candidate* best = nullptr;
  for (const Candidate& c : candidates)
    if (!best || c.plan.peak.total < best->plan.peak.total) best = &c;
  return best;
}

AutopilotResult search_configurations(const ConfiguredModelFactory& make_model, const TrainOptions& base,
                                      const AutopilotRequest& request, const MachineRates& rates) {
  check(request.batch_size >= 1, "--batch-size must be at least 1");
  check(request.budget_bytes > 0, "--memory-budget must be positive");
  check(request.micro_batch == 0 || request.batch_size % request.micro_batch == 0,
        "--micro-batch " + std::to_string(request.micro_batch) + " does not divide --batch-size " +
            std::to_string(request.batch_size));
  const auto start = std::chrono::steady_clock::now();
  AutopilotResult result;
  const std::vector<int64_t> micro_batches =
      request.micro_batch > 0 ? std::vector<int64_t>{request.micro_batch} : divisors(request.batch_size);
  const std::vector<std::string> optimizers =
      request.optimizers.empty() ? std::vector<std::string>{base.optimizer} : request.optimizers;
  for (const std::string& optimizer : optimizers)
    for (DType precision : request.precisions)
      for (int64_t micro : micro_batches) {
        TrainOptions o = base;
        o.optimizer = optimizer;
        o.steps = std::max<int64_t>(o.steps, 2);  // the planner's second step holds the optimizer state
        o.micro_batch = micro;
        o.accum = request.batch_size / micro;
        o.precision = precision;
        o.master_weights = o.master_weights || precision == DType::F32;
        o.validate();
        plan_strategies(make_model, o, request, rates, result.candidates);
      }
  std::stable_sort(result.candidates.begin(), result.candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.fits != b.fits) return a.fits;
    if (a.step_seconds != b.step_seconds) return a.step_seconds < b.step_seconds;
    return a.plan.peak.total < b.plan.peak.total;
  });
  for (Candidate& c : result.candidates) {
    c.options.steps = base.steps;
    result.fitting += c.fits ? 1 : 0;
  }
  result.search_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace frugal
