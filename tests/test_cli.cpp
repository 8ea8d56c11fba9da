// The command line as a user meets it: bad input gives one line on stderr and a non-zero exit;
// train writes the summary of DESIGN.md; a saved model reloads for grad and generate.
#include <gtest/gtest.h>

#include <cmath>

#include "cli_support.h"
#include "gradcheck.h"
#include "io/safetensors.h"
#include "kernels/cross_entropy.h"
#include "models/gpt.h"
#include "models/mlp.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "tolerances.h"
#include "train/data.h"
#include "train/gradient_snapshot.h"
#include "train/trainer.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {
using Result = frugal::testing::CliResult;
using frugal::testing::expect_one_line_error;
using frugal::testing::scratch;
using frugal::testing::slurp;

using frugal::testing::run_frugal;

// A small GPT saved by `frugal train`, shared by the tests below.
const fs::path& saved_gpt() {
  static const fs::path dir = [] {
    fs::path d = scratch("gpt");
    const Result r = run_frugal("train --arch gpt --layers 1 --dim 16 --heads 2 --ctx 8 --vocab 256 --data synthetic "
                            "--steps 2 --micro-batch 2 --save " + (d / "model").string());
    EXPECT_EQ(r.status, 0) << r.err;
    return d / "model";
  }();
  return dir;
}

void copy_model(const fs::path& from, const fs::path& to) {
  fs::remove_all(to);
  fs::create_directories(to);
  fs::copy(from / "config.json", to / "config.json");
  fs::copy(from / "model.safetensors", to / "model.safetensors");
}

// A batch file written by hand (the parity scripts write them with numpy): inputs and targets of
// shape (B, T), values (i * 7) % 256, of the given safetensors dtype ("I32" or "F32"); `first_input`
// replaces the first input value. With `only_sample` >= 0 the file holds that sample alone (shape
// (1, T)), its values those it has in the B-sample batch.
void write_token_batch(const fs::path& path, int B, int T, const std::string& input_dtype = "I32",
                       int32_t first_input = 0, int only_sample = -1) {
  const int rows = only_sample >= 0 ? 1 : B;
  const std::string shape = "[" + std::to_string(rows) + "," + std::to_string(T) + "]";
  std::string header = "{\"inputs\":{\"dtype\":\"" + input_dtype + "\",\"shape\":" + shape +
                       ",\"data_offsets\":[0," + std::to_string(4 * rows * T) + "]},\"targets\":{\"dtype\":\"I32\","
                       "\"shape\":" + shape + ",\"data_offsets\":[" + std::to_string(4 * rows * T) + "," +
                       std::to_string(8 * rows * T) + "]}}";
  while (header.size() % 8) header += ' ';
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  for (int i = 0; i < 2 * B * T; ++i) {
    if (only_sample >= 0 && (i % (B * T)) / T != only_sample) continue;
    const int32_t v = i == 0 && first_input ? first_input : (i * 7) % 256;
    if (i < B * T && input_dtype == "F32") {
      const float f = static_cast<float>(v);
      out.write(reinterpret_cast<const char*>(&f), 4);
    } else {
      out.write(reinterpret_cast<const char*>(&v), 4);
    }
  }
}

// Every tensor of a safetensors file (a gradient file, a model), widened to double.
frugal::GradientSnapshot read_tensors(const fs::path& path) {
  const frugal::SafetensorsFile f = frugal::SafetensorsFile::open(path.string());
  frugal::GradientSnapshot g;
  for (const std::string& name : f.names()) {
    const frugal::Tensor t = f.load(name, frugal::MemCategory::Workspace, frugal::DType::F32);
    g[name].assign(t.f32(), t.f32() + t.numel());
  }
  return g;
}

frugal::GptConfig gpt_config_of(const fs::path& model_dir) {
  return frugal::GptConfig::from_json(nlohmann::json::parse(slurp(model_dir / "config.json")));
}

// A GPT's loss is a mean of positive per-token terms, each a chain of fp32 sums: two evaluations in
// other orders (micro-batches, another kernel's blocking, other weights' values) are each within
// gamma_n of the exact one, relative to the loss, n the reductions on the longest path
// (gradcheck.h's gpt_reduction_terms; an adapter of rank r adds its products).
double loss_relative(const frugal::GptConfig& c, double rows, double lora_rank = 0) {
  return 2 * frugal::testing::gamma_n(frugal::testing::gpt_reduction_terms(c, rows, lora_rank));
}

}  // namespace

TEST(Cli, UnknownFlagIsOneLineError) { expect_one_line_error(run_frugal("train --no-such-flag"), "no-such-flag"); }

TEST(Cli, UnknownFlagValueIsOneLineError) {
  expect_one_line_error(run_frugal("train --arch transformer"), "transformer");
  expect_one_line_error(run_frugal("train --optimizer adam"), "adam");
  expect_one_line_error(run_frugal("train --checkpoint sometimes"), "sometimes");
}

TEST(Cli, ImpossiblePrecisionSettingsAreRefused) {
  expect_one_line_error(run_frugal("train --master-weights off --steps 1"), "--master-weights off");
  expect_one_line_error(run_frugal("train --loss-scale 1024 --steps 1"), "--loss-scale");
  expect_one_line_error(run_frugal("train --precision fp16 --loss-scale lots --steps 1"), "lots");
  expect_one_line_error(run_frugal("train --precision fp16 --loss-scale -4 --steps 1"), "--loss-scale");
  expect_one_line_error(run_frugal("train --precision fp16 --loss-scale-backoff 2 --steps 1"), "--loss-scale-backoff");
  expect_one_line_error(run_frugal("train --precision fp8 --steps 1"), "--precision");
}

TEST(Cli, MissingModelDirectory) {
  expect_one_line_error(run_frugal("grad --model /nonexistent/model --batch b --out g"), "/nonexistent/model");
}

TEST(Cli, MissingAndTruncatedSafetensors) {
  const fs::path dir = scratch("truncated");
  copy_model(saved_gpt(), dir / "m");
  write_token_batch(dir / "batch.safetensors", 2, 8);
  fs::remove(dir / "m" / "model.safetensors");
  expect_one_line_error(run_frugal("grad --model " + (dir / "m").string() + " --batch " + (dir / "batch.safetensors").string() +
                               " --out " + (dir / "g").string()),
                        "model.safetensors");
  copy_model(saved_gpt(), dir / "m");
  const auto size = fs::file_size(dir / "m" / "model.safetensors");
  fs::resize_file(dir / "m" / "model.safetensors", size - 100);
  expect_one_line_error(run_frugal("grad --model " + (dir / "m").string() + " --batch " + (dir / "batch.safetensors").string() +
                               " --out " + (dir / "g").string()),
                        "model.safetensors");
  expect_one_line_error(run_frugal("grad --model " + saved_gpt().string() + " --batch " + (dir / "missing").string() +
                               " --out " + (dir / "g").string()),
                        "missing");
}

TEST(Cli, ConfigWithMissingKey) {
  const fs::path dir = scratch("badconfig");
  copy_model(saved_gpt(), dir / "m");
  auto config = nlohmann::json::parse(slurp(dir / "m" / "config.json"));
  config.erase("n_head");
  std::ofstream(dir / "m" / "config.json") << config.dump();
  expect_one_line_error(run_frugal("generate --model " + (dir / "m").string() + " --tokens 2"), "n_head");
}

TEST(Cli, TensorShapesThatDoNotMatchTheConfig) {
  const fs::path dir = scratch("badshape");
  copy_model(saved_gpt(), dir / "m");
  auto config = nlohmann::json::parse(slurp(dir / "m" / "config.json"));
  config["n_embd"] = 32;  // the file holds n_embd 16 tensors
  std::ofstream(dir / "m" / "config.json") << config.dump();
  expect_one_line_error(run_frugal("generate --model " + (dir / "m").string() + " --tokens 2"), "shape");
}

TEST(Cli, BatchesThatDoNotFitTheModel) {
  const fs::path dir = scratch("badbatch");
  const std::string grad = "grad --model " + saved_gpt().string() + " --out " + (dir / "g").string() + " --batch ";
  write_token_batch(dir / "long.safetensors", 2, 9);  // T = 9 > n_positions 8
  expect_one_line_error(run_frugal(grad + (dir / "long.safetensors").string()), "n_positions");
  write_token_batch(dir / "vocab.safetensors", 2, 8, "I32", 300);  // token 300 >= vocab_size 256
  expect_one_line_error(run_frugal(grad + (dir / "vocab.safetensors").string()), "token id 300");
  write_token_batch(dir / "negative.safetensors", 2, 8, "I32", -5);
  expect_one_line_error(run_frugal(grad + (dir / "negative.safetensors").string()), "token id -5");
  write_token_batch(dir / "float.safetensors", 2, 8, "F32");  // token ids must be integers
  expect_one_line_error(run_frugal(grad + (dir / "float.safetensors").string()), "inputs");
}

TEST(Cli, IntegerInputsForAnMlpAreRefused) {
  const fs::path dir = scratch("mlpbatch");
  ASSERT_EQ(run_frugal("train --arch mlp --data synthetic --steps 1 --micro-batch 2 --save " + (dir / "m").string()).status, 0);
  write_token_batch(dir / "batch.safetensors", 2, 32);
  expect_one_line_error(run_frugal("grad --model " + (dir / "m").string() + " --batch " + (dir / "batch.safetensors").string() +
                               " --out " + (dir / "g").string()),
                        "inputs");
}

TEST(Cli, GradWritesEveryParameterAndGenerateRuns) {
  const fs::path dir = scratch("grad");
  write_token_batch(dir / "batch.safetensors", 2, 8);
  const Result r = run_frugal("grad --model " + saved_gpt().string() + " --batch " + (dir / "batch.safetensors").string() +
                          " --out " + (dir / "g.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["loss"].get<double>(), 0.0);  // cross-entropy, -log p with p < 1: positive (not a tolerance)
  const std::string grads = slurp(dir / "g.safetensors");
  for (const char* name : {"wte.weight", "wpe.weight", "h.0.attn.c_attn.weight", "h.0.mlp.c_proj.bias", "ln_f.bias"})
    EXPECT_NE(grads.find(std::string("\"") + name + "\""), std::string::npos) << name;
  const Result g = run_frugal("generate --model " + saved_gpt().string() + " --prompt ab --tokens 5 --seed 1");
  ASSERT_EQ(g.status, 0) << g.err;
  EXPECT_EQ(g.out.substr(0, 2), "ab");
}

TEST(Cli, GradAndTrainInHalfPrecision) {
  const fs::path dir = scratch("grad-half");
  write_token_batch(dir / "batch.safetensors", 2, 8);
  auto grads_in = [&](const std::string& precision, const fs::path& batch) {
    const fs::path out = dir / (precision + ".safetensors");
    const Result r = run_frugal("grad --model " + saved_gpt().string() + " --batch " + batch.string() +
                                " --out " + out.string() + " --precision " + precision);
    EXPECT_EQ(r.status, 0) << r.err;
    return read_tensors(out);
  };
  const auto fp32 = grads_in("fp32", dir / "batch.safetensors");
  // The first-order bound of tests/test_mixed_precision.cpp: each half rounding on the longest path
  // moves the gradient by at most u of the magnitudes it passes through, fp32's reductions by gamma_n:
  // within (R u + 2 gamma_n) sum_s |g_s| elementwise. g_s: each sample's own gradient (its loss
  // averages its 8 tokens, the batch's 16: halved).
  frugal::GradientSnapshot magnitude;
  for (int sample = 0; sample < 2; ++sample) {
    write_token_batch(dir / "sample.safetensors", 2, 8, "I32", 0, sample);
    for (const auto& [name, g] : grads_in("fp32", dir / "sample.safetensors")) {
      magnitude[name].resize(g.size(), 0.0);
      for (size_t i = 0; i < g.size(); ++i) magnitude[name][i] += std::fabs(g[i]) / 2;
    }
  }
  const frugal::GptConfig config = gpt_config_of(saved_gpt());
  for (const auto& [precision, unit] : {std::pair<std::string, double>{"fp16", frugal::testing::kFp16Unit},
                                        {"bf16", frugal::testing::kBf16Unit}}) {
    const auto half = grads_in(precision, dir / "batch.safetensors");
    ASSERT_EQ(half.size(), fp32.size());
    const double relative = frugal::testing::gpt_half_roundings(config) * unit + loss_relative(config, 2 * 8);
    for (const auto& [name, ref] : fp32) {
      const frugal::testing::SumOrderCheck c =
          frugal::testing::against_magnitude_bound({{name, half.at(name)}}, {{name, ref}}, {{name, magnitude.at(name)}}, relative);
      EXPECT_LE(c.difference, c.bound) << precision << " " << name;
    }
  }
  const Result t = run_frugal("train --arch gpt --layers 2 --dim 32 --heads 2 --ctx 16 --data synthetic --steps 3 "
                              "--micro-batch 4 --precision fp16 --summary " + (dir / "s.json").string());
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_NE(t.err.find("scale 65536"), std::string::npos) << t.err;  // the progress line shows the scale
  const auto s = nlohmann::json::parse(slurp(dir / "s.json"));
  EXPECT_EQ(s["loss_scale"].get<double>(), 65536.0);
  EXPECT_EQ(s["skipped_steps"].get<int64_t>(), 0);
  EXPECT_EQ(s["memory"]["master_params"], s["memory"]["grads"]);  // an fp32 copy of every trainable weight
  EXPECT_EQ(s["predicted_memory"], s["memory"]);
}

TEST(Cli, NanLossNamesTheFirstNonFiniteLayer) {
  // One NaN in a weight (a corrupted checkpoint): training stops at step 1 naming that layer.
  const fs::path dir = scratch("nan");
  copy_model(saved_gpt(), dir / "m");
  {
    frugal::MemoryLedger scratch_ledger;
    frugal::LedgerScope scope(scratch_ledger);
    const std::string path = (dir / "m" / "model.safetensors").string();
    std::vector<std::pair<std::string, frugal::Tensor>> tensors;
    {
      const frugal::SafetensorsFile f = frugal::SafetensorsFile::open(path);
      for (const std::string& name : f.names()) tensors.emplace_back(name, f.load(name, frugal::MemCategory::Workspace));
    }
    for (auto& [name, t] : tensors)
      if (name == "h.0.mlp.c_fc.weight") t.f32()[7] = std::nanf("");
    frugal::write_safetensors(path, tensors);
  }
  for (const char* precision : {"fp32", "bf16"}) {
    const Result r = run_frugal("train --model " + (dir / "m").string() + " --data synthetic --steps 3 --micro-batch 2 "
                                "--precision " + precision);
    expect_error_after_start(r, "output of h.0.mlp.c_fc (linear)");
    EXPECT_NE(r.err.find("at step 1"), std::string::npos) << r.err;
  }
}

TEST(Cli, TrainWritesTheSummaryOfTheDesign) {
  const fs::path dir = scratch("summary");
  const Result r = run_frugal("train --arch mlp --data synthetic --steps 3 --micro-batch 4 --summary " +
                          (dir / "s.json").string() + " --metrics " + (dir / "m.jsonl").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto s = nlohmann::json::parse(slurp(dir / "s.json"));
  for (const char* key : {"steps", "final_loss", "losses", "step_time_s", "samples_per_s", "total_params",
                          "trainable_params", "layer_count", "forward_calls", "memory", "predicted_memory",
                          "peak_rss_bytes", "skipped_steps", "loss_scale"})
    EXPECT_TRUE(s.contains(key)) << key;
  EXPECT_EQ(s["steps"], 3);
  EXPECT_EQ(s["losses"].size(), 3u);
  EXPECT_EQ(s["memory"], s["predicted_memory"]);
  EXPECT_EQ(s["forward_calls"], s["layer_count"]);
  for (const char* key : {"params", "master_params", "grads", "optimizer", "activations", "workspace", "total"})
    EXPECT_TRUE(s["memory"].contains(key)) << key;
  EXPECT_GT(s["peak_rss_bytes"].get<int64_t>(), 0);  // measured at all (getrusage), not a tolerance
  std::ifstream metrics(dir / "m.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line); ++lines) EXPECT_TRUE(nlohmann::json::parse(line).contains("loss"));
  EXPECT_EQ(lines, 3);
}

TEST(Cli, CnnReachesEightyFivePercentOnFashionMnist) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist")) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const fs::path dir = scratch("cnn");
  const Result r = run_frugal("train --arch cnn --data fashion-mnist --steps 300 --micro-batch 64 --lr 2e-3 --summary " +
                          (dir / "s.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto s = nlohmann::json::parse(slurp(dir / "s.json"));
  // A learning claim (issue: 85% on Fashion-MNIST), not a rounding bound: measured 0.871 on every
  // kernel (their rounding moves the 300 steps' weights by ~1e-6, a prediction rarely); over the 10000
  // test images the sampling standard error is sqrt(0.87 x 0.13 / 10000) = 0.0034: 0.85 is 6 of them below.
  EXPECT_GE(s["eval_accuracy"].get<double>(), 0.85);
}

TEST(Cli, PlanPredictsWhatTrainMeasures) {
  const fs::path dir = scratch("plan");
  // Two threads (per-thread scratch is part of the workspace) and one and three steps (the total
  // peaks only once gradients and optimizer state exist).
  for (const std::string extra : {"--threads 2 --steps 3", "--threads 2 --steps 1", "--threads 1 --steps 2",
                                  "--threads 2 --steps 2 --precision bf16 --checkpoint sqrt --accum 2"}) {
    const std::string config = "--arch gpt --layers 2 --dim 32 --heads 4 --ctx 16 --data synthetic --micro-batch 3 " + extra;
    const Result plan = run_frugal("plan " + config + " --json");
    ASSERT_EQ(plan.status, 0) << plan.err;
    const Result train = run_frugal("train " + config + " --summary " + (dir / "s.json").string());
    ASSERT_EQ(train.status, 0) << train.err;
    const auto predicted = nlohmann::json::parse(plan.out);
    const auto summary = nlohmann::json::parse(slurp(dir / "s.json"));
    EXPECT_EQ(predicted["predicted_memory"], summary["memory"]) << extra;
    EXPECT_EQ(predicted["forward_calls"], summary["forward_calls"]) << extra;
  }
}

TEST(Cli, GradAccumExperimentReportsMeasuredNumbers) {
  const fs::path dir = scratch("experiment");
  const Result r = run_frugal("experiment grad-accum --out " + dir.string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp(dir / "grad-accum.json"));
  // The bounds of tests/test_accumulation.cpp for the experiment's own models and batches
  // (src/experiments/grad_accum.cpp, rebuilt here): two summation orders of one batch gradient, 2 gamma_n
  // times the largest condition ||sum_s |g_s| || / ||g|| over the tensors (the JSON holds the largest
  // difference over tensors and K).
  using frugal::testing::per_sample_magnitudes;
  const auto sum_order_bound = [](const frugal::ModelMaker& make, const frugal::Batch& batch, double n) {
    const frugal::GradientSnapshot full = frugal::accumulated_gradients(make, batch, 1);
    return 2 * frugal::testing::gamma_n(n) *
           frugal::testing::against_magnitude_bound(full, full, per_sample_magnitudes(make, batch), 1.0).bound;
  };
  const frugal::ModelMaker linear = [] {
    auto m = std::make_unique<frugal::LinearRegression>(16, 4);
    m->init_weights(2);
    return std::unique_ptr<frugal::Model>(std::move(m));
  };
  // n: forward K = 16 (+ the bias), the loss's 4 outputs, the 64 rows summed.
  const double linear_bound = sum_order_bound(linear, frugal::SyntheticRegression(16, 4, 3).batch(0, 64), 17 + 4 + 64);
  EXPECT_LE(j["linear_mse"]["max_rel_grad_diff"].get<double>(), linear_bound);
  // BatchNorm normalises each micro-batch with its own statistics: O(1 / sqrt(q)) of a standard
  // deviation off for q samples, far above the rounding bounds here (~1e-5).
  EXPECT_GT(j["batchnorm"]["max_rel_grad_diff"].get<double>(), 1e-2);
  {
    frugal::MlpConfig mc;
    mc.in_features = 16, mc.hidden = 32, mc.out_features = 4, mc.n_layers = 3, mc.norm = "batch";
    frugal::Mlp model(mc);
    model.init_weights(1);
    frugal::SyntheticRegression data(16, 4, 5);
    const frugal::Batch batch = frugal::SyntheticRegression(16, 4, 5).batch(0, 64);
    frugal::TrainOptions o;
    o.steps = 1;
    o.micro_batch = 64;
    o.bn_stats = "micro";
    frugal::Trainer(model, data, o).step(0);  // the experiment's full-batch run
    std::vector<float> full;
    for (const char* name : {"layers.0.bn.running_mean", "layers.0.bn.running_var"}) {
      const frugal::Param& buffer = model.find_state(name);
      full.insert(full.end(), buffer.value.f32(), buffer.value.f32() + buffer.value.numel());
    }
    frugal::Mlp fresh(mc);
    fresh.init_weights(1);
    auto& first =
        static_cast<frugal::Linear&>(*static_cast<frugal::Sequential&>(*fresh.blocks()[0]).layers()[0]);
    // (gradcheck.h: the first Linear's outputs over fewer rows, carried by the momentum, and the
    // statistics' own rounding; tests/test_accumulation.cpp checks the same mode in process.)
    const double bound = frugal::testing::running_statistics_bound(first, batch.inputs, full);
    EXPECT_LE(j["batchnorm"]["running_stats_rel_diff"].get<double>(), bound);
  }
  // The naive weights N / (K n_k) are far from 1 on this ragged batch (micro-batches count 2 to 3
  // times as many tokens as others): a difference of that order, far above the bound below (~1e-4).
  EXPECT_GT(j["ragged_tokens"]["naive_rel_diff"].get<double>(), 1e-2);
  {
    frugal::GptConfig c;
    c.n_layer = 2, c.n_head = 2, c.n_embd = 32, c.n_positions = 32, c.vocab_size = 64;
    const frugal::ModelMaker gpt = [c] {
      auto m = std::make_unique<frugal::Gpt>(c);
      m->init_weights(6);
      return std::unique_ptr<frugal::Model>(std::move(m));
    };
    frugal::Batch batch = frugal::RandomTokens(64, 32, 7).batch(0, 8);
    for (int64_t s = 0; s < 8; ++s)
      for (int64_t t = 0; t < 3 * s; ++t) batch.targets.i32()[s * 32 + t] = frugal::kIgnoreIndex;
    const double bound = sum_order_bound(gpt, batch, frugal::testing::gpt_reduction_terms(c, 8 * 32));
    EXPECT_LE(j["ragged_tokens"]["exact_rel_diff"].get<double>(), bound);
  }
  const std::string md = slurp(dir / "grad-accum.md");
  EXPECT_NE(md.find("BatchNorm"), std::string::npos);
  EXPECT_GT(fs::file_size(dir / "grad-accum.png"), 1000u);
}

TEST(Cli, MixedPrecisionExperimentReportsMeasuredNumbers) {
  // 20 steps per run (the report's figures come from the full 400-step run, docs/BENCHMARKS.md).
  const fs::path dir = scratch("experiment-mp");
  const Result r = run_frugal("experiment mixed-precision --steps-scale 0.05 --out " + dir.string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp(dir / "mixed-precision.json"));
  // Ledger bytes (exact, the same on every kernel): half activations and compute copies against an
  // fp32 master, gradients and AdamW state kept fp32: 0.68-0.70 of fp32's total here.
  for (const char* p : {"fp16", "bf16"})
    EXPECT_LT(j["memory_total"][p].get<double>(), 0.8 * j["memory_total"]["fp32"].get<double>()) << p;
  for (const char* p : {"fp32", "fp16", "bf16", "fp16_no_master"}) {
    const double loss = j["final_loss"][p].get<double>();
    // A learning claim: 20 steps take every run from ln 256 to about 4.0 (measured 4.01-4.02, every
    // kernel: precision moves it by ~0.01); 5.0 says each learned, half a nat below the uniform guess.
    EXPECT_TRUE(std::isfinite(loss) && loss < 5.0) << p;  // below the uniform guess ln 256 = 5.545
  }
  // From an initial scale of 2^16 an overflow now and then is the scaler doing its job (skip, halve);
  // what must not happen is skipping as a habit.
  EXPECT_LE(j["skipped_steps"].get<int64_t>(), 2);
  // A separation, not a tolerance: 17% of the gradients are below fp16's normal range, 0.015% stay
  // below its smallest subnormal once scaled by 2^16 (measured).
  EXPECT_GT(j["underflow"]["below_2^-14"].get<double>(), j["underflow"]["below_2^-24_scaled_65536"].get<double>());
  EXPECT_EQ(j["lost_updates"]["per_step"].size(), 20u);
  for (const char* png : {"mixed-precision-loss.png", "mixed-precision-lost-updates.png", "mixed-precision-gradients.png"})
    EXPECT_GT(fs::file_size(dir / png), 1000u) << png;
  EXPECT_NE(slurp(dir / "mixed-precision.md").find("master"), std::string::npos);
}

TEST(Cli, AccumulationMatchesTheFullBatchWithSmallerActivations) {
  const fs::path dir = scratch("accum");
  const std::string model = "train --arch gpt --layers 2 --dim 32 --heads 2 --ctx 16 --data synthetic --steps 5 ";
  ASSERT_EQ(run_frugal(model + "--micro-batch 8 --accum 1 --summary " + (dir / "full.json").string()).status, 0);
  ASSERT_EQ(run_frugal(model + "--micro-batch 2 --accum 4 --summary " + (dir / "acc.json").string()).status, 0);
  const auto full = nlohmann::json::parse(slurp(dir / "full.json"));
  const auto acc = nlohmann::json::parse(slurp(dir / "acc.json"));
  // As tests/test_accumulation.cpp's TrainingMatchesFullBatchWithSmallerActivations: each step's loss
  // is the same forward sum in two orders (loss_relative), at weights the earlier steps' gradients
  // (within that bound of each other) moved apart: to first order one more such bound per step.
  const double relative = loss_relative(frugal::GptConfig::from_json(full["run"]["config"]), 8 * 16);
  for (int s = 0; s < 5; ++s) {
    EXPECT_NEAR(acc["losses"][s].get<double>(), full["losses"][s].get<double>(),
                (s + 1) * relative * full["losses"][s].get<double>());
  }
  // Ledger bytes (exact): micro-batch 2 instead of 8 keeps a quarter of the per-sample activations;
  // the whole batch's token ids (8 x 16 x 2 int32) stay, so the ratio is a little under 4.
  const double ratio = full["memory"]["activations"].get<double>() / acc["memory"]["activations"].get<double>();  // 3.98
  EXPECT_GT(ratio, 3.5);
  EXPECT_EQ(acc["forward_calls"].get<int64_t>(), 4 * full["forward_calls"].get<int64_t>());
}

TEST(Cli, CheckpointExperimentReportsMeasuredNumbers) {
  const fs::path dir = scratch("experiment-checkpoint");
  const Result r = run_frugal("experiment checkpoint --max-blocks 32 --out " + dir.string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp(dir / "checkpoint.json"));
  std::map<std::string, nlohmann::json> at32;
  for (const auto& row : j["rows"]) {
    for (const char* key : {"strategy", "layers", "activation_bytes", "forward_calls", "step_time_s"})
      EXPECT_TRUE(row.contains(key)) << key;
    if (row["model"] == "mlp" && row["layers"] == 32) at32[row["strategy"]] = row;
  }
  ASSERT_EQ(at32.size(), 3u);
  EXPECT_EQ(at32["store-all"]["forward_calls"], 32);
  EXPECT_EQ(at32["memory-poor"]["forward_calls"], 32 * 33 / 2);
  // Counts, exact: sqrt checkpointing runs each block once forward and at most once more to recompute.
  EXPECT_LE(at32["sqrt"]["forward_calls"].get<int64_t>(), 64);
  EXPECT_LT(at32["memory-poor"]["activation_bytes"].get<int64_t>(), at32["sqrt"]["activation_bytes"].get<int64_t>());
  EXPECT_LT(at32["sqrt"]["activation_bytes"].get<int64_t>(), at32["store-all"]["activation_bytes"].get<int64_t>());
  for (const char* s : {"store-all", "sqrt", "memory-poor"}) EXPECT_TRUE(j["fitted_exponent"].contains(s)) << s;
  for (const char* png : {"checkpoint-memory.png", "checkpoint-forwards.png", "checkpoint-timeline.png"})
    EXPECT_GT(fs::file_size(dir / png), 1000u) << png;  // a plot, not an empty file (not a tolerance)
}

TEST(Cli, CheckpointStrategiesGiveTheSameGradientsThroughGrad) {
  const fs::path dir = scratch("grad-checkpoint");
  write_token_batch(dir / "batch.safetensors", 4, 8);
  std::string reference;
  for (const std::string strategy : {"store-all", "memory-poor", "sqrt", "optimal --activation-budget 1MiB"}) {
    const Result r = run_frugal("grad --model " + saved_gpt().string() + " --batch " + (dir / "batch.safetensors").string() +
                            " --accum 2 --checkpoint " + strategy + " --out " + (dir / "g.safetensors").string());
    ASSERT_EQ(r.status, 0) << strategy << ": " << r.err;
    const std::string grads = slurp(dir / "g.safetensors");
    if (reference.empty()) reference = grads;
    EXPECT_EQ(grads, reference) << strategy;  // the gradient files are byte-identical
  }
  expect_one_line_error(run_frugal("plan --arch gpt --checkpoint optimal --activation-budget 1KiB"), "smallest budget");
  expect_one_line_error(run_frugal("plan --arch gpt --checkpoint optimal"), "--activation-budget");
  expect_one_line_error(run_frugal("plan --arch gpt --checkpoint optimal --activation-budget lots"), "lots");
}

TEST(Cli, LoraTrainSaveGradMergeExtract) {
  const fs::path dir = scratch("lora");
  const std::string base = saved_gpt().string();
  // Fine-tune with LoRA on all four matrices (B starts at zero, so train a few steps).
  Result r = run_frugal("train --model " + base + " --data synthetic --steps 3 --micro-batch 2 --lr 1e-2 --lora-rank 2 "
                    "--lora-alpha 4 --lora-targets c_attn,c_proj,c_fc --save-adapter " + (dir / "adapter").string() +
                    " --summary " + (dir / "s.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto s = nlohmann::json::parse(slurp(dir / "s.json"));
  EXPECT_EQ(s["trainable_params"].get<int64_t>(), 2 * ((16 + 48) + (16 + 16) + (16 + 64) + (64 + 16)));
  EXPECT_EQ(s["memory"]["grads"].get<int64_t>(), 4 * s["trainable_params"].get<int64_t>());
  EXPECT_EQ(s["memory"]["optimizer"].get<int64_t>(), 8 * s["trainable_params"].get<int64_t>());
  const auto config = nlohmann::json::parse(slurp(dir / "adapter" / "adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["r"], 2);
  EXPECT_EQ(config["fan_in_fan_out"], true);
  // grad with the adapter writes only the adapter's keys.
  write_token_batch(dir / "batch.safetensors", 2, 8);
  const std::string batch = " --batch " + (dir / "batch.safetensors").string();
  r = run_frugal("grad --model " + base + " --adapter " + (dir / "adapter").string() + batch + " --out " +
             (dir / "g.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const double adapter_loss = nlohmann::json::parse(r.out)["loss"].get<double>();
  const std::string grads = slurp(dir / "g.safetensors");
  EXPECT_NE(grads.find("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"), std::string::npos);
  EXPECT_EQ(grads.find("\"wte.weight\""), std::string::npos);
  // Resuming an adapter on a half base: its adapted weights are born in --base-precision as with
  // --lora-rank (no per-tensor conversion after loading), so the params peaks are equal.
  const auto params_peak = [&](const std::string& lora_flags) {
    const Result run = run_frugal("train --model " + base + " --data synthetic --steps 1 --micro-batch 2 --precision bf16 "
                                  "--base-precision fp16 " + lora_flags + " --summary " + (dir / "h.json").string());
    EXPECT_EQ(run.status, 0) << run.err;
    return nlohmann::json::parse(slurp(dir / "h.json"))["memory"]["params"].get<int64_t>();
  };
  EXPECT_EQ(params_peak("--adapter " + (dir / "adapter").string()),
            params_peak("--lora-rank 2 --lora-alpha 4 --lora-targets c_attn,c_proj,c_fc"));
  // Merge: a plain model with the same loss.
  r = run_frugal("lora merge --model " + base + " --adapter " + (dir / "adapter").string() + " --out " + (dir / "tuned").string());
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_frugal("grad --model " + (dir / "tuned").string() + batch + " --out " + (dir / "g2.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.err;
  // The same loss in other orders: W + s B A folded first (one more rounding per weight) against x W
  // + s (x A^T) B^T: loss_relative with the adapter's terms (rank 2), 2 x 8 rows.
  const double relative = loss_relative(gpt_config_of(saved_gpt()), 2 * 8, 2);
  EXPECT_NEAR(nlohmann::json::parse(r.out)["loss"].get<double>(), adapter_loss, relative * adapter_loss);
  // On an nf4 base: the adapter merged into the dequantised weights computes what the adapter on the
  // quantised base computes; --dtype bf16 writes bf16 tensors (rounding moves the loss a little).
  r = run_frugal("grad --model " + base + " --adapter " + (dir / "adapter").string() + " --base-precision nf4" + batch +
                 " --out " + (dir / "g4.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const double nf4_loss = nlohmann::json::parse(r.out)["loss"].get<double>();
  // (nf4 moves each weight by up to half a gap between its 16 levels: far more than any rounding)
  EXPECT_NE(nf4_loss, adapter_loss);
  double weight_sensitivity = 0;  // sum_i |dL/dw_i| |w_i| over the fp32 merged model
  for (const std::string dtype : {"fp32", "bf16"}) {
    const std::string out = (dir / ("tuned-nf4-" + dtype)).string();
    r = run_frugal("lora merge --model " + base + " --adapter " + (dir / "adapter").string() +
                   " --base-precision nf4 --dtype " + dtype + " --out " + out);
    ASSERT_EQ(r.status, 0) << r.err;
    r = run_frugal("grad --model " + out + batch + " --out " + (dir / "g5.safetensors").string());
    ASSERT_EQ(r.status, 0) << r.err;
    if (dtype == "fp32") {
      const frugal::GradientSnapshot g = read_tensors(dir / "g5.safetensors"), w = read_tensors(fs::path(out) / "model.safetensors");
      for (const auto& [name, grad] : g)
        for (size_t i = 0; i < grad.size(); ++i) weight_sensitivity += std::fabs(grad[i] * w.at(name)[i]);
    }
    // fp32: the dequantised weights (level x absmax, the product the quantised GEMM forms too) with
    // s B A folded in, against the quantised layers adding the adapter: loss_relative, as above.
    // bf16: every tensor also rounded to bf16, each weight moved by at most 2^-8 of itself, which to
    // first order moves the loss by at most 2^-8 sum_i |dL/dw_i| |w_i| (the fp32 model's gradient).
    const double bound = relative * nf4_loss + (dtype == "fp32" ? 0.0 : frugal::testing::kBf16Unit * weight_sensitivity);
    EXPECT_NEAR(nlohmann::json::parse(r.out)["loss"].get<double>(), nf4_loss, bound);
    EXPECT_EQ(slurp(fs::path(out) / "model.safetensors").find("\"BF16\"") != std::string::npos, dtype == "bf16");
  }
  // Extract: the tuned - base delta has rank 2 per module, so a rank-2 extraction reproduces it.
  r = run_frugal("lora extract --base " + base + " --tuned " + (dir / "tuned").string() + " --rank 2 --out " +
             (dir / "extracted").string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("h.0.attn.c_attn"), std::string::npos);
  r = run_frugal("grad --model " + base + " --adapter " + (dir / "extracted").string() + batch + " --out " +
             (dir / "g3.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.err;
  // The extracted adapter's s B'A' against the trained s B A, per adapted matrix: the delta it is
  // taken from, tuned - base, is s B A plus E, |E| <= u |tuned| (the merge's rounding) + u |delta| (the
  // subtraction) + gamma_3 s |B||A| (the fold's sums); the best rank-2 approximation of s B A + E is
  // within 2 ||E||_F of s B A (Eckart-Young; LAPACK's SVD runs in double); the factors are rounded to
  // float (5 u of sum_r S_r <= sqrt(2) ||delta||_F). To first order the loss moves by at most
  // sum ||dL/dW||_F ||s B'A' - s B A||_F (the tuned model's gradient), plus both passes' loss_relative.
  double extraction = 0;
  {
    const frugal::GradientSnapshot w0 = read_tensors(saved_gpt() / "model.safetensors"),
                                   w1 = read_tensors(dir / "tuned" / "model.safetensors"),
                                   g = read_tensors(dir / "g2.safetensors"),
                                   adapter = read_tensors(dir / "adapter" / "adapter_model.safetensors");
    const double u = frugal::testing::kFp32Unit, s = 4.0 / 2.0;  // --lora-alpha 4, rank 2
    const auto norm = [](const std::vector<double>& v) {
      double q = 0;
      for (double x : v) q += x * x;
      return std::sqrt(q);
    };
    for (const std::string m : {"h.0.attn.c_attn", "h.0.attn.c_proj", "h.0.mlp.c_fc", "h.0.mlp.c_proj"}) {
      const std::vector<double>& before = w0.at(m + ".weight");
      const std::vector<double>& after = w1.at(m + ".weight");
      std::vector<double> delta(before.size());
      for (size_t i = 0; i < delta.size(); ++i) delta[i] = after[i] - before[i];
      const std::string peft = "base_model.model.transformer." + m;
      const double e = u * norm(after) + u * norm(delta) +
                       frugal::testing::gamma_n(3) * s * norm(adapter.at(peft + ".lora_B.weight")) * norm(adapter.at(peft + ".lora_A.weight"));
      extraction += norm(g.at(m + ".weight")) * (2 * e + 5 * std::sqrt(2.0) * u * norm(delta));
    }
  }
  EXPECT_NEAR(nlohmann::json::parse(r.out)["loss"].get<double>(), adapter_loss, relative * adapter_loss + extraction);
  // Bad input.
  expect_one_line_error(run_frugal("train --model " + base + " --data synthetic --steps 1 --lora-rank 17"), "rank");
  expect_one_line_error(run_frugal("train --model " + base + " --data synthetic --steps 1 --lora-rank 2 --lora-targets q_proj"),
                        "q_proj");
  expect_one_line_error(run_frugal("lora extract --base " + base + " --tuned " + (dir / "tuned").string() +
                               " --rank 40 --out " + (dir / "x").string()),
                        "rank");
}

TEST(Cli, LoraExperimentReportsMeasuredNumbers) {
  if (!fs::exists("/usr/share/games/fortunes/science")) GTEST_SKIP() << "Debian package fortunes not installed";
  const fs::path dir = scratch("experiment-lora");
  const Result r = run_frugal("experiment lora --steps-scale 0.05 --out " + dir.string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp(dir / "lora.json"));
  // Exact counts and ledger bytes: adapters of rank 8 on four matrices per block hold 2 r n numbers
  // where the matrices hold n^2 (README's arithmetic), under a tenth of the model here.
  EXPECT_LT(j["trainable_params"]["lora"].get<int64_t>(), j["trainable_params"]["full"].get<int64_t>() / 10);
  EXPECT_LT(j["grad_optimizer_bytes"]["lora"].get<int64_t>(), j["grad_optimizer_bytes"]["full"].get<int64_t>() / 10);
  // An identity, so no tolerance: the adapter's forward without dropout folds W + s B A into a copy
  // of W (nn/lora.h folds(), lora_fold) as merge_lora folds it into W, and both then run the same
  // product on the same numbers (0 on every kernel; it was checked against 1e-4).
  EXPECT_EQ(j["merge_max_abs_diff"].get<double>(), 0.0);
  for (const char* k : {"base", "lora", "full", "full_dropout", "lora_dropout"})
    EXPECT_GT(j["heldout_loss"][k].get<double>(), 0.0) << k;
  EXPECT_NE(j["heldout_loss"]["full_dropout"], j["heldout_loss"]["full"]) << "the dropout runs differ";
  for (const char* k : {"full", "lora"}) EXPECT_GT(j["step_time_s"][k].get<double>(), 0.0) << k;
  // Quantised bases: their rows, fewer weight bytes, a held-out loss near the fp32 base's (the full-length
  // figures, nf4 within 2% and int8 within 1%, are in docs/BENCHMARKS.md).
  // A model-quality claim, not rounding: int8 moves each base weight by at most absmax / 254 of its
  // row, nf4 by half a gap between its 16 levels; after fine-tuning that costs 0.95% (nf4) and 0.25%
  // (int8) of the held-out loss here, every kernel alike (their rounding moves it by ~1e-6); 5% is the
  // ceiling for this 5%-length run. Bytes: exact ledger figures (1 byte or half a byte + block scales
  // per adapted weight instead of 4; embeddings, norms and adapters stay fp32): 0.36 and 0.24 of fp32.
  const double lora_loss = j["heldout_loss"]["lora"].get<double>();
  for (const char* k : {"lora_nf4", "lora_int8"}) {
    EXPECT_LT(j["params_bytes"][k].get<double>(), 0.6 * j["params_bytes"]["lora"].get<double>()) << k;
    EXPECT_NEAR(j["heldout_loss"][k].get<double>(), lora_loss, 0.05 * lora_loss) << k;
    EXPECT_GT(j["step_time_s"][k].get<double>(), 0.0) << k;
  }
  EXPECT_LT(j["params_bytes"]["lora_nf4"].get<double>(), j["params_bytes"]["lora_int8"].get<double>());
  EXPECT_GT(fs::file_size(dir / "lora.png"), 1000u);
  EXPECT_FALSE(fs::exists(dir / "lora-pretrained"));  // the scratch model is cleaned up
}

TEST(Cli, FlagsThatWouldBeIgnoredAreRefused) {
  expect_one_line_error(run_frugal("train --model " + saved_gpt().string() + " --layers 3 --steps 1"), "--layers");
  expect_one_line_error(run_frugal("train --arch gpt --lora-alpha 4 --steps 1"), "--lora-rank");
  expect_one_line_error(run_frugal("train --arch gpt --base-precision bf16 --steps 1"), "--lora-rank");
  // A quantised weight takes no gradient: only LoRA's frozen base may be quantised.
  expect_one_line_error(run_frugal("train --arch gpt --base-precision nf4 --steps 1"), "--lora-rank");
}

// Issue 15's bad inputs at scale: a chunk setting that cannot work, a context past the model's
// n_positions, data whose token ids the model's vocabulary does not have.
TEST(Cli, ScaleSettingsThatCannotWorkAreOneLineErrors) {
  expect_one_line_error(run_frugal("train --arch gpt --loss-chunk -5 --steps 1"), "loss chunk");
  expect_one_line_error(run_frugal("plan --arch gpt --loss-chunk -1"), "loss chunk");
  expect_one_line_error(run_frugal("train --arch mlp --loss-chunk 8 --steps 1"), "--loss-chunk");
  expect_one_line_error(run_frugal("train --arch gpt --attention-tile 0 --attention-tile -2 --steps 1"), "tile");
  expect_one_line_error(run_frugal("plan --arch gpt --attention-tile 4096"), "tile");
  expect_one_line_error(run_frugal("train --arch gpt --attention sometimes --steps 1"), "sometimes");
  expect_one_line_error(run_frugal("train --model " + saved_gpt().string() + " --ctx 64 --steps 1"), "n_positions");
  expect_one_line_error(run_frugal("train --arch gpt --vocab 100 --steps 1"), "vocab_size");
}

// The kernel flags are part of a run: a resumed run keeps --attention, --attention-tile and
// --loss-chunk (the fused attention rounds differently from the materialising one Auto picks at this
// length), so it continues bit for bit.
TEST(Cli, ResumedRunsKeepTheirKernels) {
  const fs::path dir = scratch("resume_kernels");
  const std::string run = "train --arch gpt --layers 2 --dim 32 --heads 2 --ctx 32 --vocab 64 --data synthetic "
                          "--attention flash --attention-tile 8 --loss-chunk 24 --steps 4 --micro-batch 2 --save " +
                          (dir / "ck").string() + " --save-every 2 --summary ";
  auto r = run_frugal(run + (dir / "whole.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  fs::remove_all(dir / "ck" / "checkpoints" / "step-00000004");
  r = run_frugal("train --resume " + (dir / "ck").string() + " --summary " + (dir / "resumed.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("--attention \"flash\""), std::string::npos) << r.err;
  const auto summary = [&](const char* name) { return nlohmann::json::parse(slurp(dir / name)); };
  EXPECT_EQ(summary("resumed.json")["final_loss"].get<double>(), summary("whole.json")["final_loss"].get<double>());
  EXPECT_EQ(summary("resumed.json")["kernels"], summary("whole.json")["kernels"]);
}
