// The command line as a user meets it: bad input gives one line on stderr and a non-zero exit;
// train writes the summary of DESIGN.md; a saved model reloads for grad and generate.
#include <gtest/gtest.h>

#include <cmath>

#include "cli_support.h"
#include "io/safetensors.h"
#include "train/gradient_snapshot.h"

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
// replaces the first input value.
void write_token_batch(const fs::path& path, int B, int T, const std::string& input_dtype = "I32",
                       int32_t first_input = 0) {
  const std::string shape = "[" + std::to_string(B) + "," + std::to_string(T) + "]";
  std::string header = "{\"inputs\":{\"dtype\":\"" + input_dtype + "\",\"shape\":" + shape +
                       ",\"data_offsets\":[0," + std::to_string(4 * B * T) + "]},\"targets\":{\"dtype\":\"I32\","
                       "\"shape\":" + shape + ",\"data_offsets\":[" + std::to_string(4 * B * T) + "," +
                       std::to_string(8 * B * T) + "]}}";
  while (header.size() % 8) header += ' ';
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  for (int i = 0; i < 2 * B * T; ++i) {
    const int32_t v = i == 0 && first_input ? first_input : (i * 7) % 256;
    if (i < B * T && input_dtype == "F32") {
      const float f = static_cast<float>(v);
      out.write(reinterpret_cast<const char*>(&f), 4);
    } else {
      out.write(reinterpret_cast<const char*>(&v), 4);
    }
  }
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
  EXPECT_GT(j["loss"].get<double>(), 0.0);
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
  auto grads_in = [&](const std::string& precision) {
    const fs::path out = dir / (precision + ".safetensors");
    const Result r = run_frugal("grad --model " + saved_gpt().string() + " --batch " + (dir / "batch.safetensors").string() +
                                " --out " + out.string() + " --precision " + precision);
    EXPECT_EQ(r.status, 0) << r.err;
    const frugal::SafetensorsFile f = frugal::SafetensorsFile::open(out.string());
    std::map<std::string, std::vector<double>> g;
    for (const std::string& name : f.names()) {
      const frugal::Tensor t = f.load(name, frugal::MemCategory::Workspace, frugal::DType::F32);
      g[name].assign(t.f32(), t.f32() + t.numel());
    }
    return g;
  };
  const auto fp32 = grads_in("fp32");
  for (const auto& [precision, tolerance] : {std::pair<std::string, double>{"fp16", 3e-2}, {"bf16", 6e-2}}) {
    const auto half = grads_in(precision);
    ASSERT_EQ(half.size(), fp32.size());
    for (const auto& [name, ref] : fp32) EXPECT_LE(frugal::relative_difference(half.at(name), ref), tolerance) << precision << " " << name;
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
  EXPECT_GT(s["peak_rss_bytes"].get<int64_t>(), 0);
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
  EXPECT_LE(j["linear_mse"]["max_rel_grad_diff"].get<double>(), 1e-5);
  EXPECT_GT(j["batchnorm"]["max_rel_grad_diff"].get<double>(), 1e-2);
  EXPECT_LE(j["batchnorm"]["running_stats_rel_diff"].get<double>(), 1e-6);
  EXPECT_GT(j["ragged_tokens"]["naive_rel_diff"].get<double>(), 1e-2);
  EXPECT_LE(j["ragged_tokens"]["exact_rel_diff"].get<double>(), 1e-5);
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
  for (const char* p : {"fp16", "bf16"})
    EXPECT_LT(j["memory_total"][p].get<double>(), 0.8 * j["memory_total"]["fp32"].get<double>()) << p;
  for (const char* p : {"fp32", "fp16", "bf16", "fp16_no_master"}) {
    const double loss = j["final_loss"][p].get<double>();
    EXPECT_TRUE(std::isfinite(loss) && loss < 5.0) << p;  // below the uniform guess ln 256 = 5.545
  }
  // From an initial scale of 2^16 an overflow now and then is the scaler doing its job (skip, halve);
  // what must not happen is skipping as a habit.
  EXPECT_LE(j["skipped_steps"].get<int64_t>(), 2);
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
  for (int s = 0; s < 5; ++s)
    EXPECT_NEAR(acc["losses"][s].get<double>(), full["losses"][s].get<double>(), 1e-5 * full["losses"][s].get<double>());
  const double ratio = full["memory"]["activations"].get<double>() / acc["memory"]["activations"].get<double>();
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
  EXPECT_LE(at32["sqrt"]["forward_calls"].get<int64_t>(), 64);
  EXPECT_LT(at32["memory-poor"]["activation_bytes"].get<int64_t>(), at32["sqrt"]["activation_bytes"].get<int64_t>());
  EXPECT_LT(at32["sqrt"]["activation_bytes"].get<int64_t>(), at32["store-all"]["activation_bytes"].get<int64_t>());
  for (const char* s : {"store-all", "sqrt", "memory-poor"}) EXPECT_TRUE(j["fitted_exponent"].contains(s)) << s;
  for (const char* png : {"checkpoint-memory.png", "checkpoint-forwards.png", "checkpoint-timeline.png"})
    EXPECT_GT(fs::file_size(dir / png), 1000u) << png;
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
  EXPECT_NEAR(nlohmann::json::parse(r.out)["loss"].get<double>(), adapter_loss, 1e-5 * adapter_loss);
  // On an nf4 base: the adapter merged into the dequantised weights computes what the adapter on the
  // quantised base computes; --dtype bf16 writes bf16 tensors (rounding moves the loss a little).
  r = run_frugal("grad --model " + base + " --adapter " + (dir / "adapter").string() + " --base-precision nf4" + batch +
                 " --out " + (dir / "g4.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const double nf4_loss = nlohmann::json::parse(r.out)["loss"].get<double>();
  EXPECT_NE(nf4_loss, adapter_loss);
  for (const std::string dtype : {"fp32", "bf16"}) {
    const std::string out = (dir / ("tuned-nf4-" + dtype)).string();
    r = run_frugal("lora merge --model " + base + " --adapter " + (dir / "adapter").string() +
                   " --base-precision nf4 --dtype " + dtype + " --out " + out);
    ASSERT_EQ(r.status, 0) << r.err;
    r = run_frugal("grad --model " + out + batch + " --out " + (dir / "g5.safetensors").string());
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NEAR(nlohmann::json::parse(r.out)["loss"].get<double>(), nf4_loss, (dtype == "fp32" ? 1e-5 : 1e-2) * nf4_loss);
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
  EXPECT_NEAR(nlohmann::json::parse(r.out)["loss"].get<double>(), adapter_loss, 1e-4 * adapter_loss);
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
  EXPECT_LT(j["trainable_params"]["lora"].get<int64_t>(), j["trainable_params"]["full"].get<int64_t>() / 10);
  EXPECT_LT(j["grad_optimizer_bytes"]["lora"].get<int64_t>(), j["grad_optimizer_bytes"]["full"].get<int64_t>() / 10);
  EXPECT_LE(j["merge_max_abs_diff"].get<double>(), 1e-4);
  for (const char* k : {"base", "lora", "full", "full_dropout", "lora_dropout"})
    EXPECT_GT(j["heldout_loss"][k].get<double>(), 0.0) << k;
  EXPECT_NE(j["heldout_loss"]["full_dropout"], j["heldout_loss"]["full"]) << "the dropout runs differ";
  for (const char* k : {"full", "lora"}) EXPECT_GT(j["step_time_s"][k].get<double>(), 0.0) << k;
  // Quantised bases: their rows, fewer weight bytes, a held-out loss near the fp32 base's (the full-length
  // figures, nf4 within 2% and int8 within 1%, are in docs/BENCHMARKS.md).
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
