#include "experiments/checkpoint.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/units.h"
#include "io/atomic_file.h"
#include "models/gpt.h"
#include "models/mlp.h"
#include "report/plot.h"
#include "train/data.h"
#include "train/trainer.h"

namespace frugal {

namespace {

const std::vector<std::string> kStrategies = {"store-all", "sqrt", "memory-poor"};
constexpr int64_t kMicroBatch = 32;

struct Measured {
  size_t activation_bytes = 0;
  int64_t forward_calls = 0;
  double step_time_s = 0;
  std::vector<TimelineEvent> timeline;  // of the second step
};

// Two real training steps in a fresh ledger; the second is timed and its timeline recorded.
Measured measure(Model& model, DataSource& data, const std::string& strategy, MemoryLedger& ledger) {
  TrainOptions o;
  o.steps = 2;
  o.micro_batch = kMicroBatch;
  o.checkpoint = strategy;
  Trainer trainer(model, data, o);
  trainer.step(0);
  ledger.start_timeline();
  const StepRecord r = trainer.step(1);
  ledger.stop_timeline();
  return {ledger.peak()[MemCategory::Activations], r.forward_calls, r.seconds, ledger.timeline()};
}

Measured measure_mlp(int blocks, const std::string& strategy) {
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  MlpConfig c;
  c.in_features = 64;
  c.hidden = 64;
  c.out_features = 8;
  c.n_layers = blocks;
  Mlp model(c);
  model.init_weights(1);
  SyntheticRegression data(64, 8, 2);
  return measure(model, data, strategy, ledger);
}

Measured measure_gpt(int layers, const std::string& strategy) {
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  GptConfig c;
  c.n_layer = layers;
  c.n_head = 4;
  c.n_embd = 64;
  c.n_positions = 64;
  Gpt model(c);
  model.init_weights(3);
  RandomTokens data(256, 64, 4);
  return measure(model, data, strategy, ledger);
}

// Least-squares slope of log(y) against log(x).
double fitted_exponent(const std::vector<double>& x, const std::vector<double>& y) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double n = static_cast<double>(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    sx += std::log(x[i]);
    sy += std::log(y[i]);
    sxx += std::log(x[i]) * std::log(x[i]);
    sxy += std::log(x[i]) * std::log(y[i]);
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

void plot_timelines(const std::string& dir, const std::map<std::string, Measured>& runs, int blocks) {
  std::vector<Series> series;
  for (const auto& strategy : kStrategies) {
    Series s{strategy, {}, {}, true};
    for (const auto& e : runs.at(strategy).timeline) {
      if (e.category != MemCategory::Activations) continue;
      s.x.push_back(e.time_s * 1e3);
      s.y.push_back(static_cast<double>(e.live_bytes) / 1024.0);
    }
    series.push_back(s);
  }
  plot_png(dir + "/checkpoint-timeline.png",
           {"Live activations during one step, MLP chain of " + std::to_string(blocks) +
                " blocks (recomputation: the saw-tooth)",
            "time (ms)", "KiB", false},
           series);
}

std::string markdown(const nlohmann::json& r) {
  std::ostringstream md;
  md << "# Activation checkpointing: memory and recomputation against depth\n\n"
     << "Produced by `frugal experiment checkpoint --out DIR`. MLP chains of n blocks (linear 64 -> 64 + ReLU "
        "per block), micro-batch " << kMicroBatch << ", two real training steps each; activation bytes are the "
        "ledger's peak of the activations category (the batch's own tensors included), forward calls are block "
        "forward evaluations in one step, step time is the second step's.\n\n"
     << "| strategy | n | activation bytes | forward calls | step time |\n|---|---:|---:|---:|---:|\n";
  for (const auto& row : r["rows"]) {
    if (row["model"] != "mlp") continue;
    md << "| " << row["strategy"].get<std::string>() << " | " << row["layers"].get<int>() << " | "
       << format_bytes(row["activation_bytes"].get<double>()) << " | " << row["forward_calls"].get<int64_t>() << " | "
       << format_seconds(row["step_time_s"].get<double>()) << " |\n";
  }
  const auto& e = r["fitted_exponent"];
  const auto& f = r["forward_calls_fit"];
  char line[512];
  md << "\n## The complexity table, from the measurements\n\nExponents are least-squares slopes of log(measured) "
        "against log(n) over n = 16..256.\n\n| strategy | activation memory | forward calls per step | forwards per block "
        "|\n|---|---|---|---|\n";
  std::snprintf(line, sizeof line, "| store-all | O(n): exponent %.2f | O(n): exponent %.2f | 1 |\n",
                e["store-all"].get<double>(), f["store-all"].get<double>());
  md << line;
  std::snprintf(line, sizeof line, "| sqrt | O(sqrt n): exponent %.2f | O(n): exponent %.2f | 1..2 |\n",
                e["sqrt"].get<double>(), f["sqrt"].get<double>());
  md << line;
  std::snprintf(line, sizeof line, "| memory-poor | O(1): exponent %.2f | O(n^2): exponent %.2f | 1..n |\n",
                e["memory-poor"].get<double>(), f["memory-poor"].get<double>());
  md << line;
  md << "\nsqrt keeps the inputs of about sqrt(n) segment boundaries and recomputes one segment at a time "
        "(the last segment is not recomputed); memory-poor keeps only the chain's input and recomputes blocks "
        "0..i-1 before the backward of block i: n(n+1)/2 forwards.\n\n"
     << "## GPT\n\nThe same strategies on a GPT (width 64, 4 heads, context 64, micro-batch " << kMicroBatch
     << "):\n\n| strategy | layers | activation bytes | forward calls | step time |\n|---|---:|---:|---:|---:|\n";
  for (const auto& row : r["rows"]) {
    if (row["model"] != "gpt") continue;
    md << "| " << row["strategy"].get<std::string>() << " | " << row["layers"].get<int>() << " | "
       << format_bytes(row["activation_bytes"].get<double>()) << " | " << row["forward_calls"].get<int64_t>() << " | "
       << format_seconds(row["step_time_s"].get<double>()) << " |\n";
  }
  md << "\n![memory](checkpoint-memory.png)\n![forwards](checkpoint-forwards.png)\n![timeline](checkpoint-timeline.png)\n";
  return md.str();
}

}  // namespace

nlohmann::json run_checkpoint_experiment(const std::string& out_dir, int max_blocks) {
  std::filesystem::create_directories(out_dir);
  nlohmann::json rows = nlohmann::json::array();
  std::map<std::string, std::vector<double>> ns, bytes, calls;
  std::map<std::string, Measured> timeline_runs;
  for (int n = 8; n <= max_blocks; n *= 2) {
    for (const auto& strategy : kStrategies) {
      Measured m = measure_mlp(n, strategy);
      rows.push_back({{"model", "mlp"}, {"strategy", strategy}, {"layers", n}, {"activation_bytes", m.activation_bytes},
                      {"forward_calls", m.forward_calls}, {"step_time_s", m.step_time_s}});
      if (n >= 16 && n <= 256) {
        ns[strategy].push_back(n);
        bytes[strategy].push_back(static_cast<double>(m.activation_bytes));
        calls[strategy].push_back(static_cast<double>(m.forward_calls));
      }
      if (n == 16) timeline_runs[strategy] = std::move(m);
    }
  }
  for (int layers : {4, 8, 16})
    for (const auto& strategy : kStrategies) {
      const Measured m = measure_gpt(layers, strategy);
      rows.push_back({{"model", "gpt"}, {"strategy", strategy}, {"layers", layers},
                      {"activation_bytes", m.activation_bytes}, {"forward_calls", m.forward_calls},
                      {"step_time_s", m.step_time_s}});
    }
  nlohmann::json r;
  r["rows"] = rows;
  for (const auto& strategy : kStrategies) {
    r["fitted_exponent"][strategy] = fitted_exponent(ns[strategy], bytes[strategy]);
    r["forward_calls_fit"][strategy] = fitted_exponent(ns[strategy], calls[strategy]);
  }
  std::vector<Series> memory, forwards;
  for (const auto& strategy : kStrategies) {
    Series m{strategy, {}, {}, false}, f{strategy, {}, {}, false};
    for (const auto& row : rows) {
      if (row["model"] != "mlp" || row["strategy"] != strategy) continue;
      m.x.push_back(row["layers"].get<double>());
      m.y.push_back(row["activation_bytes"].get<double>() / 1024.0);
      f.x.push_back(row["layers"].get<double>());
      f.y.push_back(row["forward_calls"].get<double>());
    }
    memory.push_back(m);
    forwards.push_back(f);
  }
  plot_png(out_dir + "/checkpoint-memory.png", {"Peak activation memory, MLP chains", "blocks n", "KiB", true, true},
           memory);
  plot_png(out_dir + "/checkpoint-forwards.png", {"Block forwards per step", "blocks n", "forward calls", true, true},
           forwards);
  plot_timelines(out_dir, timeline_runs, 16);
  write_file_atomic(out_dir + "/checkpoint.json", r.dump(2) + "\n");
  write_file_atomic(out_dir + "/checkpoint.md", markdown(r));
  return r;
}

}  // namespace frugal
