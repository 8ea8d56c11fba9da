#include "experiments/grad_accum.h"

#include <cstdio>
#include <filesystem>
#include <functional>
#include <sstream>

#include "io/atomic_file.h"
#include "kernels/cross_entropy.h"
#include "models/gpt.h"
#include "models/mlp.h"
#include "report/plot.h"
#include "train/accumulate.h"
#include "train/data.h"
#include "train/executor.h"
#include "train/gradient_snapshot.h"
#include "train/trainer.h"

namespace frugal {

namespace {

constexpr int64_t kBatch = 64;

GradientSnapshot accumulated(const ModelMaker& make, const Batch& batch, int64_t accum) {
  return accumulated_gradients(make, batch, accum);
}

ModelMaker mlp(const std::string& norm) {
  return [norm] {
    MlpConfig c;
    c.in_features = 16;
    c.hidden = 32;
    c.out_features = 4;
    c.n_layers = 3;
    c.norm = norm;
    auto m = std::make_unique<Mlp>(c);
    m->init_weights(1);
    return std::unique_ptr<Model>(std::move(m));
  };
}

// The textbook case: a linear model with MSE.
nlohmann::json linear_mse(const std::vector<int64_t>& ks) {
  ModelMaker make = [] {
    auto m = std::make_unique<LinearRegression>(16, 4);
    m->init_weights(2);
    return std::unique_ptr<Model>(std::move(m));
  };
  const Batch batch = SyntheticRegression(16, 4, 3).batch(0, kBatch);
  const GradientSnapshot full = accumulated(make, batch, 1);
  nlohmann::json per_k = nlohmann::json::object();
  double worst = 0;
  for (int64_t k : ks) {
    const double d = max_relative_difference(accumulated(make, batch, k), full);
    per_k[std::to_string(k)] = d;
    worst = std::max(worst, d);
  }
  return {{"max_rel_grad_diff", worst}, {"per_k", per_k}};
}

// The same MLP with BatchNorm, and with GroupNorm/LayerNorm as the remedy.
nlohmann::json batchnorm_gradients(const std::vector<int64_t>& ks) {
  const Batch batch = SyntheticRegression(16, 4, 4).batch(0, kBatch);
  nlohmann::json out;
  for (const std::string norm : {"batch", "group", "layer"}) {
    const GradientSnapshot full = accumulated(mlp(norm), batch, 1);
    nlohmann::json per_k = nlohmann::json::object();
    double worst = 0;
    for (int64_t k : ks) {
      const double d = max_relative_difference(accumulated(mlp(norm), batch, k), full);
      per_k[std::to_string(k)] = d;
      worst = std::max(worst, d);
    }
    out[norm] = {{"max_rel_grad_diff", worst}, {"per_k", per_k}};
  }
  return out;
}

// Running statistics of the first BatchNorm after one optimizer step.
std::vector<double> first_bn_stats_after_step(int64_t micro, int64_t accum, const std::string& bn_stats) {
  auto model = mlp("batch")();
  SyntheticRegression data(16, 4, 5);
  TrainOptions o;
  o.steps = 1;
  o.micro_batch = micro;
  o.accum = accum;
  o.bn_stats = bn_stats;
  Trainer(*model, data, o).step(0);
  std::vector<double> stats;
  for (const char* name : {"layers.0.bn.running_mean", "layers.0.bn.running_var"}) {
    const Param& buffer = model->find_state(name);
    stats.insert(stats.end(), buffer.value.f32(), buffer.value.f32() + buffer.value.numel());
  }
  return stats;
}

nlohmann::json running_statistics(int64_t k) {
  const auto full = first_bn_stats_after_step(kBatch, 1, "micro");
  return {{"k", k},
          {"batch_mode_rel_diff", relative_difference(first_bn_stats_after_step(kBatch / k, k, "batch"), full)},
          {"micro_mode_rel_diff", relative_difference(first_bn_stats_after_step(kBatch / k, k, "micro"), full)}};
}

// A GPT batch padded with -100 so that micro-batches count very different numbers of tokens.
nlohmann::json ragged_tokens(int64_t k) {
  GptConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 32;
  c.n_positions = 32;
  c.vocab_size = 64;
  ModelMaker make = [c] {
    auto m = std::make_unique<Gpt>(c);
    m->init_weights(6);
    return std::unique_ptr<Model>(std::move(m));
  };
  const int64_t B = 8, T = 32;
  Batch batch = RandomTokens(64, T, 7).batch(0, B);
  for (int64_t s = 0; s < B; ++s)  // sequence s keeps only its last T - 3s targets
    for (int64_t t = 0; t < 3 * s; ++t) batch.targets.i32()[s * T + t] = kIgnoreIndex;
  const GradientSnapshot full = accumulated(make, batch, 1);
  std::vector<int64_t> counts;
  const GradientSnapshot naive = naively_normalised_gradients(make, batch, k, &counts);
  return {{"k", k},
          {"counted_tokens_per_micro_batch", counts},
          {"naive_rel_diff", max_relative_difference(naive, full)},
          {"exact_rel_diff", max_relative_difference(accumulated(make, batch, k), full)}};
}

std::string format(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

std::string markdown(const nlohmann::json& r, const std::vector<int64_t>& ks) {
  std::ostringstream md;
  md << "# Gradient accumulation: when it is exactly the full batch, and when it is not\n\n"
     << "Produced by `frugal experiment grad-accum --out DIR`; every number below comes from the runs of that "
        "command (fp32, batch of " << kBatch << " samples split into K equal micro-batches).\n\n"
     << "Rule: every micro-batch's summed loss is divided by the number of counted items of the *whole* batch "
        "(samples, or tokens whose target is not -100), counted before the first micro-batch runs; parameter "
        "gradients add up in place.\n\n"
     << "## Linear model + MSE\n\nThe mean over m sections of q samples equals the mean over n = mq samples, so "
        "the accumulated gradient is the full-batch gradient up to float rounding:\n\n| K | max relative gradient "
        "difference |\n|---:|---:|\n";
  for (int64_t k : ks) md << "| " << k << " | " << format(r["linear_mse"]["per_k"][std::to_string(k)]) << " |\n";
  md << "\n## MLP with BatchNorm\n\nBatchNorm normalises with the mean and variance of the samples it sees. Under "
        "accumulation that is a micro-batch of q = n/K samples, whose mu and sigma are not those of the n-sample "
        "batch, so every activation after the first BatchNorm, and so every gradient, changes: the difference "
        "(largest over the parameter tensors) is as large as the gradient itself, and explodes when a micro-batch "
        "holds 2 samples (each normalised value is then +-1). GroupNorm and LayerNorm normalise each sample on its own and keep the "
        "identity (`--norm group|layer`):\n\n| K | BatchNorm | GroupNorm | LayerNorm |\n|---:|---:|---:|---:|\n";
  for (int64_t k : ks) {
    const std::string key = std::to_string(k);
    md << "| " << k << " | " << format(r["batchnorm"]["per_k"][key]) << " | "
       << format(r["remedies"]["group"]["per_k"][key]) << " | " << format(r["remedies"]["layer"]["per_k"][key])
       << " |\n";
  }
  const auto& rs = r["batchnorm"]["running_stats"];
  md << "\nRunning statistics (first BatchNorm layer, after one optimizer step with K = " << rs["k"].get<int64_t>()
     << "): with `--bn-stats batch` the micro-batches' counts, means and squared deviations are merged "
        "(parallel variance merge) and the running mean and variance are updated once per step: relative "
        "difference to the full batch "
     << format(r["batchnorm"]["running_stats_rel_diff"]) << ". Updating after every micro-batch (`--bn-stats "
        "micro`, PyTorch's behaviour) gives "
     << format(rs["micro_mode_rel_diff"]) << ".\n\nRemedies, cheapest first: `--norm group` or `--norm layer` "
        "(exact accumulation); larger micro-batches (the difference falls with q); `--bn-stats batch` (fixes the "
        "running statistics used at evaluation, not the training gradients).\n\n";
  const auto& rt = r["ragged_tokens"];
  md << "## GPT batch with ragged targets\n\nA batch of 8 sequences padded with -100 so that the K = "
     << rt["k"].get<int64_t>() << " micro-batches count " << rt["counted_tokens_per_micro_batch"].dump()
     << " tokens. Averaging each micro-batch over its own tokens and dividing by K weights tokens of sparse "
        "micro-batches more:\n\n| normalisation | max relative gradient difference |\n|---|---:|\n| naive (mean "
        "per micro-batch, / K) | "
     << format(rt["naive_rel_diff"]) << " |\n| frugal (divide by the batch's counted tokens) | "
     << format(rt["exact_rel_diff"]) << " |\n\n![BatchNorm vs K](grad-accum.png)\n";
  return md.str();
}

void plot(const std::string& path, const nlohmann::json& r, const std::vector<int64_t>& ks) {
  std::vector<Series> series;
  auto add = [&](const std::string& title, const nlohmann::json& per_k) {
    Series s{title, {}, {}, false};  // points joined by lines
    for (int64_t k : ks) {
      s.x.push_back(static_cast<double>(k));
      s.y.push_back(std::max(per_k[std::to_string(k)].get<double>(), 1e-12));  // log axis: 0 drawn at 1e-12
    }
    series.push_back(s);
  };
  add("MLP + BatchNorm", r["batchnorm"]["per_k"]);
  add("MLP + GroupNorm", r["remedies"]["group"]["per_k"]);
  add("MLP + LayerNorm", r["remedies"]["layer"]["per_k"]);
  add("linear + MSE", r["linear_mse"]["per_k"]);
  plot_png(path, {"Accumulated vs full-batch gradient (batch 64)", "micro-batches K", "max relative difference", true, true},
           series);
}

}  // namespace

nlohmann::json run_grad_accum_experiment(const std::string& out_dir) {
  const std::vector<int64_t> ks = {2, 4, 8, 16, 32};
  nlohmann::json r;
  r["linear_mse"] = linear_mse(ks);
  const nlohmann::json norms = batchnorm_gradients(ks);
  const nlohmann::json stats = running_statistics(8);
  r["batchnorm"] = {{"max_rel_grad_diff", norms["batch"]["max_rel_grad_diff"]},
                    {"per_k", norms["batch"]["per_k"]},
                    {"running_stats_rel_diff", stats["batch_mode_rel_diff"]},
                    {"running_stats", stats}};
  r["remedies"] = {{"group", norms["group"]}, {"layer", norms["layer"]}};
  r["ragged_tokens"] = ragged_tokens(4);
  std::filesystem::create_directories(out_dir);
  write_file_atomic(out_dir + "/grad-accum.json", r.dump(2) + "\n");
  write_file_atomic(out_dir + "/grad-accum.md", markdown(r, ks));
  plot(out_dir + "/grad-accum.png", r, ks);
  return r;
}

}  // namespace frugal
