#include "experiments/mixed_precision.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>
#include <sstream>

#include "core/units.h"
#include "experiments/experiment_gpt.h"
#include "io/atomic_file.h"
#include "models/gpt.h"
#include "report/plot.h"
#include "report/summary.h"
#include "train/accumulate.h"
#include "train/data.h"
#include "train/trainer.h"

namespace frugal {

namespace {

constexpr int kMinExponent = -40, kMaxExponent = 4;  // histogram range of log2 |gradient|

TrainOptions demo_options(int64_t steps, DType precision, bool master_weights, float lr, const std::string& schedule) {
  TrainOptions o;
  o.steps = steps;
  o.micro_batch = 16;
  o.lr = lr;
  o.schedule = schedule;
  o.warmup = schedule == "cosine" ? std::min<int64_t>(50, steps / 10) : 0;
  o.precision = precision;
  o.master_weights = master_weights;
  return o;
}

struct Run {
  std::string name;
  std::vector<double> losses, lost_fraction;
  MemorySnapshot memory;
  int64_t skipped = 0;
  double final_scale = 1.0, step_time = 0.0;
  // fp32 run only: |update| / |weight| of every weight in the last step
  std::vector<double> update_ratios;
};

std::vector<float> trainable_values(Model& model) {
  std::vector<float> v;
  for (Param* p : model.params())
    if (p->trainable && p->value.dtype() == DType::F32) v.insert(v.end(), p->value.f32(), p->value.f32() + p->value.numel());
  return v;
}

Run train_run(const std::string& name, int64_t steps, DType precision, bool master_weights, float lr = 2e-3f,
              const std::string& schedule = "cosine") {
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  Gpt model(experiment_gpt());
  model.init_weights(1);
  std::unique_ptr<DataSource> data = make_data_source("fortunes", model, 1);
  Trainer trainer(model, *data, demo_options(steps, precision, master_weights, lr, schedule));
  Run run;
  run.name = name;
  std::vector<double> times;
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<float> before;
    if (precision == DType::F32 && s == steps - 1) before = trainable_values(model);
    const StepRecord r = trainer.step(s);
    run.losses.push_back(r.loss);
    run.lost_fraction.push_back(r.lost_update_fraction);
    run.skipped += r.skipped;
    if (s > 0) times.push_back(r.seconds);
    if (!before.empty()) {
      const std::vector<float> after = trainable_values(model);
      for (size_t i = 0; i < after.size(); ++i)
        if (before[i] != 0.0f) run.update_ratios.push_back(std::fabs(after[i] - before[i]) / std::fabs(before[i]));
    }
  }
  run.final_scale = trainer.loss_scale();
  run.step_time = median(times);
  run.memory = ledger.at_peak();  // what the peak is made of
  return run;
}

// Weight gradients of the fresh demo model on one batch, in fp32 (no scaling): their exponents.
std::vector<double> fp32_gradients() {
  Gpt model(experiment_gpt());
  model.init_weights(1);
  std::unique_ptr<DataSource> data = make_data_source("fortunes", model, 1);
  accumulate_gradients(model, data->batch(0, 16), 1, RunContext{});
  std::vector<double> g;
  for (Param* p : model.params())
    if (p->grad.has_data())
      for (int64_t i = 0; i < p->grad.numel(); ++i) g.push_back(p->grad.f32()[i]);
  return g;
}

double fraction_below(const std::vector<double>& values, double threshold) {
  int64_t nonzero = 0, below = 0;
  for (double v : values) {
    if (v == 0.0) continue;
    ++nonzero;
    below += std::fabs(v) < threshold;
  }
  return nonzero ? static_cast<double>(below) / static_cast<double>(nonzero) : 0.0;
}

double mean_of_last(const std::vector<double>& v, size_t n) {
  n = std::min(n, v.size());
  double s = 0;
  for (size_t i = v.size() - n; i < v.size(); ++i) s += v[i];
  return n ? s / static_cast<double>(n) : 0.0;
}

// The report's sections, one function each (markdown() puts them in order).
std::string md_runs_table(const nlohmann::json& r, const std::vector<Run>& runs) {
  std::ostringstream md;
  char line[2048];
  md << "# Mixed precision: half the activation bytes, the same training curve\n\n"
        "Produced by `frugal experiment mixed-precision --out DIR`. The demo GPT (4 blocks, width 128, context "
     << kExperimentContext << ", micro-batch 16, AdamW, lr 2e-3 with warmup and cosine decay to 10%) on the fortunes text, "
     << r["steps"].get<int64_t>() << " steps from the same seed in each precision.\n\n"
     << "Memory columns are the live bytes of each category at the moment the total peaked (the ledger's "
        "`at_peak`).\n\n"
     << "| run | final loss (mean of last 20 steps) | vs fp32 | skipped steps | final loss scale | params | master_params | "
        "grads | optimizer | activations | workspace | total | step time |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  const double ref = mean_of_last(runs[0].losses, 20);
  for (const Run& run : runs) {
    const double loss = mean_of_last(run.losses, 20);
    auto b = [&](MemCategory c) { return format_bytes(static_cast<double>(run.memory[c])); };
    std::snprintf(line, sizeof line, "| %s | %.4f | %+.2f%% | %lld | %g | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                  run.name.c_str(), loss, 100.0 * (loss / ref - 1.0), static_cast<long long>(run.skipped), run.final_scale,
                  b(MemCategory::Params).c_str(), b(MemCategory::MasterParams).c_str(), b(MemCategory::Grads).c_str(),
                  b(MemCategory::Optimizer).c_str(), b(MemCategory::Activations).c_str(), b(MemCategory::Workspace).c_str(),
                  format_bytes(static_cast<double>(run.memory.total)).c_str(), format_seconds(run.step_time).c_str());
    md << line;
  }
  return md.str();
}

std::string md_why_loss_scaling(const nlohmann::json& r) {
  const auto& u = r["underflow"];
  char line[2048];
  std::snprintf(line, sizeof line,
                "\nMemory drops although fp16/bf16 keep a second copy of the weights: `master_params` holds the fp32 "
                "copy, `params` the half-precision compute copy, and the activations (what dominates) are stored in "
                "half precision.\n\n"
                "## Why loss scaling\n\nOf the non-zero fp32 weight gradients of the fresh model (one batch), "
                "%.2f%% are below fp16's smallest subnormal (2^-24) and %.2f%% below its smallest normal (2^-14): "
                "without scaling fp16 would flush the first to zero and keep the second with fewer bits. With "
                "the scale 65536 (2^16) only %.2f%% fall below 2^-24. The same holds for the activation gradients "
                "they are made from, which fp16 stores.\n\n![gradient exponents](mixed-precision-gradients.png)\n\n",
                100 * u["below_2^-24"].get<double>(), 100 * u["below_2^-14"].get<double>(),
                100 * u["below_2^-24_scaled_65536"].get<double>());
  return line;
}

std::string md_why_master_weights(const nlohmann::json& r) {
  const auto& upd = r["update_ratio"];
  const auto& lost = r["lost_updates"];
  char line[2048];
  std::snprintf(line, sizeof line,
                "## Why master weights\n\nAn fp16 weight has 11 significant bits: the spacing of its neighbours is "
                "between 2^-11 and 2^-10 of its value, so an update below half of that (2^-12 to 2^-11 of the "
                "weight) is rounded away. In the fp32 run's last step the median |update| / |weight| is %.2e; "
                "%.1f%% of the updates are below 2^-12 of their weight (always erased in fp16) and %.1f%% below "
                "2^-11 (erased or rounded to a whole spacing). Without master weights the fraction of non-zero "
                "updates that rounding erased was %.1f%% over the first 10%% of the steps and %.1f%% over the last "
                "10%%: final loss %.4f against fp32's %.4f (%+.2f%%).\n\n",
                upd["median"].get<double>(), 100 * upd["below_2^-12"].get<double>(),
                100 * upd["below_2^-11"].get<double>(), 100 * lost["first_tenth"].get<double>(),
                100 * lost["last_tenth"].get<double>(), r["final_loss"]["fp16_no_master"].get<double>(),
                r["final_loss"]["fp32"].get<double>(),
                100 * (r["final_loss"]["fp16_no_master"].get<double>() / r["final_loss"]["fp32"].get<double>() - 1));
  return line;
}

std::string md_lr_sweep(const nlohmann::json& r) {
  std::ostringstream md;
  char line[2048];
  md << "## Where fp16 without master weights is and is not hurt\n\nThe same model from the same seed, "
     << r["sweep_steps"].get<int64_t>()
     << " steps at a constant learning rate, fp32 against fp16 without master weights (AdamW moves each weight "
        "by about lr per step whatever its gradient, so lr against the weight's fp16 spacing decides):\n\n"
        "| lr | fp32 final loss | fp16 no master | difference | share of fp32's loss decrease kept | updates "
        "erased by rounding (mean) |\n|---:|---:|---:|---:|---:|---:|\n";
  std::string hurt, unhurt;
  for (const auto& row : r["lr_sweep"]) {
    const double kept = row["progress_kept"].get<double>();
    std::snprintf(line, sizeof line, "| %.0e | %.4f | %.4f | %+.2f%% | %.0f%% | %.1f%% |\n", row["lr"].get<double>(),
                  row["fp32"].get<double>(), row["fp16_no_master"].get<double>(),
                  100 * (row["fp16_no_master"].get<double>() / row["fp32"].get<double>() - 1), 100 * kept,
                  100 * row["lost_fraction"].get<double>());
    md << line;
    char lr[32];
    std::snprintf(lr, sizeof lr, "%.0e", row["lr"].get<double>());
    (kept < 0.9 ? hurt : unhurt) += (kept < 0.9 ? hurt : unhurt).empty() ? lr : std::string(", ") + lr;
  }
  md << "\nMeasured here: without master weights the run keeps at least 90% of fp32's progress at lr "
     << (unhurt.empty() ? "(none)" : unhurt) << " and falls short at lr " << (hurt.empty() ? "(none)" : hurt) << ".\n";
  md << "\nWith the demo's lr 2e-3 the updates are large against fp16's spacing for the small GPT weights "
        "(std 0.02): most survive rounding and the loss is not hurt over these steps, although the erased "
        "fraction grows as the cosine schedule lowers lr. The smaller lr is against the weights' magnitude (the "
        "tail of a decaying schedule, fine-tuning rates, LayerNorm gains near 1 whose half-ulp is 2.4e-4), the "
        "larger the fraction of updates that vanish and the less of fp32's progress the run keeps. "
        "The FP32 master keeps every update however small, which is why fp16 and bf16 with masters track "
        "fp32.\n\n"
        "![loss curves](mixed-precision-loss.png)\n\n![lost updates](mixed-precision-lost-updates.png)\n";
  return md.str();
}

std::string markdown(const nlohmann::json& r, const std::vector<Run>& runs) {
  return md_runs_table(r, runs) + md_why_loss_scaling(r) + md_why_master_weights(r) + md_lr_sweep(r);
}

// fp16 without master weights against fp32 at constant learning rates: where dropping the master
// copy hurts.
nlohmann::json lr_sweep(int64_t sweep_steps) {
  nlohmann::json rows = nlohmann::json::array();
  for (float lr : {2e-3f, 2e-4f, 2e-5f, 2e-6f}) {
    const Run full = train_run("fp32", sweep_steps, DType::F32, true, lr, "constant");
    const Run ablation = train_run("fp16_no_master", sweep_steps, DType::F16, false, lr, "constant");
    const std::vector<double>& f = ablation.lost_fraction;
    const double start = full.losses.front(), fp32_end = mean_of_last(full.losses, 10),
                 ablation_end = mean_of_last(ablation.losses, 10);
    rows.push_back({{"lr", lr},
                    {"fp32", fp32_end},
                    {"fp16_no_master", ablation_end},
                    // the share of fp32's loss decrease that the run without masters achieved
                    {"progress_kept", (start - ablation_end) / (start - fp32_end)},
                    {"lost_fraction", std::accumulate(f.begin(), f.end(), 0.0) / static_cast<double>(f.size())}});
  }
  return rows;
}

// What the numbers behind the two "why" sections are: gradients below fp16's range (with and
// without the loss scale), update sizes against their weights, and updates lost without masters.
void add_rounding_statistics(nlohmann::json& r, const std::vector<double>& grads, const std::vector<Run>& runs) {
  std::vector<double> scaled(grads);
  for (double& g : scaled) g *= 65536.0;
  r["underflow"] = {{"below_2^-24", fraction_below(grads, std::ldexp(1.0, -24))},
                    {"below_2^-14", fraction_below(grads, std::ldexp(1.0, -14))},
                    {"below_2^-24_scaled_65536", fraction_below(scaled, std::ldexp(1.0, -24))}};
  std::vector<double> ratios = runs[0].update_ratios;
  std::sort(ratios.begin(), ratios.end());
  r["update_ratio"] = {{"median", ratios.empty() ? 0.0 : ratios[ratios.size() / 2]},
                       {"below_2^-12", fraction_below(ratios, std::ldexp(1.0, -12))},
                       {"below_2^-11", fraction_below(ratios, std::ldexp(1.0, -11))}};
  const std::vector<double>& lost = runs[3].lost_fraction;
  const size_t tenth = std::max<size_t>(1, lost.size() / 10);
  auto mean = [](auto begin, auto end) { return std::accumulate(begin, end, 0.0) / static_cast<double>(end - begin); };
  r["lost_updates"] = {{"per_step", lost},
                       {"first_tenth", mean(lost.begin(), lost.begin() + tenth)},
                       {"last_tenth", mean(lost.end() - tenth, lost.end())}};
}

// A series of values against their 1-based step.
Series per_step(const std::string& name, const std::vector<double>& values, double factor = 1.0) {
  Series s{name, {}, {}};
  for (size_t i = 0; i < values.size(); ++i) {
    s.x.push_back(static_cast<double>(i + 1));
    s.y.push_back(factor * values[i]);
  }
  return s;
}

void write_plots(const std::string& out_dir, const std::vector<Run>& runs, const std::vector<double>& grads) {
  std::vector<Series> curves;
  for (const Run& run : runs) curves.push_back(per_step(run.name, run.losses));
  plot_png(out_dir + "/mixed-precision-loss.png", {"Training loss, same seed", "step", "loss", false}, curves);
  plot_png(out_dir + "/mixed-precision-lost-updates.png",
           {"Non-zero updates erased by fp16 rounding (no master weights)", "step", "% of updates", false},
           {per_step("fp16 without master weights", runs[3].lost_fraction, 100.0)});
  // One pass over the gradients: counts per exponent, unscaled and scaled by 2^16 (exponent + 16).
  std::map<int, int64_t> exponents;
  for (double g : grads)
    if (g != 0.0) ++exponents[std::ilogb(g)];
  Series hist_plain{"fp32 gradients", {}, {}, true}, hist_scaled{"x 65536 (loss scale)", {}, {}, true};
  for (int e = kMinExponent; e <= kMaxExponent + 16; ++e) {
    hist_plain.x.push_back(e);
    hist_plain.y.push_back(static_cast<double>(exponents[e]));
    hist_scaled.x.push_back(e);
    hist_scaled.y.push_back(static_cast<double>(exponents[e - 16]));
  }
  Series limit{"fp16 smallest subnormal (2^-24)", {-24, -24}, {0, static_cast<double>(grads.size()) / 8}};
  plot_png(out_dir + "/mixed-precision-gradients.png",
           {"Exponents of weight gradients (log2 |g|)", "exponent", "count", false}, {hist_plain, hist_scaled, limit});
}

}  // namespace

nlohmann::json run_mixed_precision_experiment(const std::string& out_dir, double steps_scale) {
  std::filesystem::create_directories(out_dir);
  const int64_t steps = std::max<int64_t>(20, static_cast<int64_t>(std::lround(400 * steps_scale)));
  std::vector<Run> runs;
  runs.push_back(train_run("fp32", steps, DType::F32, true));
  runs.push_back(train_run("fp16", steps, DType::F16, true));
  runs.push_back(train_run("bf16", steps, DType::BF16, true));
  runs.push_back(train_run("fp16_no_master", steps, DType::F16, false));

  nlohmann::json r;
  r["steps"] = steps;
  for (const Run& run : runs) {
    r["final_loss"][run.name] = mean_of_last(run.losses, 20);
    r["losses"][run.name] = run.losses;
    r["memory"][run.name] = memory_json(run.memory);
    if (run.name != "fp16_no_master") r["memory_total"][run.name] = run.memory.total;
    r["step_time_s"][run.name] = run.step_time;
  }
  r["skipped_steps"] = runs[1].skipped;
  const int64_t sweep_steps = std::max<int64_t>(10, static_cast<int64_t>(std::lround(150 * steps_scale)));
  r["sweep_steps"] = sweep_steps;
  r["lr_sweep"] = lr_sweep(sweep_steps);
  r["loss_scale"] = runs[1].final_scale;
  const std::vector<double> grads = fp32_gradients();
  add_rounding_statistics(r, grads, runs);
  write_plots(out_dir, runs, grads);
  write_file_atomic(out_dir + "/mixed-precision.json", r.dump(2) + "\n");
  write_file_atomic(out_dir + "/mixed-precision.md", markdown(r, runs));
  return r;
}

}  // namespace frugal
