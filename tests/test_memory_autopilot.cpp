// The memory-budget autopilot (train/autopilot.h, `plan`/`train --memory-budget`), the ledger's hard
// limit (`--memory-limit`), and the cost model's work counts (core/work_meter.h, train/cost_model.h).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include "cli_support.h"
#include "core/error.h"
#include "core/ledger.h"
#include "core/tensor.h"
#include "models/mlp.h"
#include "train/cost_model.h"
#include "train/planner.h"

using namespace frugal;
using namespace frugal::testing;
namespace fs = std::filesystem;

namespace {

const std::string kGpt = "--arch gpt --layers 2 --dim 32 --heads 2 --ctx 32 --vocab 64 --data synthetic";
const std::string kDeepMlp = "--arch mlp --layers 64 --dim 64 --data synthetic";

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(slurp(p)); }

// The least a run of `model` with `batch` samples per step can take: the planner's total for
// micro-batch 1 with memory-poor checkpointing.
int64_t smallest_feasible(const std::string& model, int batch) {
  const CliResult r = run_frugal("plan " + model + " --micro-batch 1 --accum " + std::to_string(batch) +
                                 " --checkpoint memory-poor --json");
  EXPECT_EQ(r.status, 0) << r.err;
  return nlohmann::json::parse(r.out)["predicted_memory"]["total"].get<int64_t>();
}

}  // namespace

TEST(MemoryLimit, TheLedgerRefusesAnAllocationPastTheLimit) {
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  ledger.set_limit(1 << 20);
  Tensor a = Tensor::empty({128 * 1024}, DType::F32, MemCategory::Activations);  // 512 KiB
  ledger.set_phase("backward 7");
  try {
    Tensor b = Tensor::empty({192 * 1024}, DType::F32, MemCategory::Grads);  // 768 KiB: past 1 MiB
    FAIL() << "allocated past the limit";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("memory limit 1.0 MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("grads"), std::string::npos) << m;
    EXPECT_NE(m.find("backward 7"), std::string::npos) << m;
    EXPECT_NE(m.find("768.0 KiB"), std::string::npos) << m;
  }
  EXPECT_EQ(ledger.live().total, size_t{512} << 10) << "nothing was booked for the refused allocation";
  Tensor c = Tensor::empty({64 * 1024}, DType::F32, MemCategory::Workspace);  // 256 KiB still fits
  EXPECT_EQ(ledger.live().total, size_t{768} << 10);
}

TEST(MemoryLimit, ARunThatCannotFitNeverStarts) {
  const fs::path dir = scratch("limit_below_plan");
  const CliResult r = run_frugal("train " + kGpt + " --steps 2 --memory-limit 64KiB --summary " + (dir / "s.json").string());
  expect_one_line_error(r, "below this run's planned peak");
  EXPECT_FALSE(fs::exists(dir / "s.json"));
}

// An allocation larger than the plan (forced by the test hook) stops the run at that allocation,
// naming category and phase; the checkpoint written before stays intact and resumes.
TEST(MemoryLimit, ALargerThanPlannedAllocationStopsTheRunAndKeepsCheckpoints) {
  const fs::path dir = scratch("limit_forced");
  const std::string save = (dir / "run").string();
  auto r = run_frugal("train " + kGpt + " --steps 2 --save-every 2 --save " + save);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string checkpoint = slurp(fs::path(save) / "checkpoints" / "step-00000002" / "state.safetensors");
  ASSERT_FALSE(checkpoint.empty());
  r = run_frugal("train --resume " + save + " --steps 4 --memory-limit 32MiB",
                 "FRUGAL_TEST_FORCE_ALLOCATION='backward 1:40MiB'");
  expect_error_after_start(r, "memory limit 32.0 MiB reached: 40.0 MiB of workspace in backward 1");
  EXPECT_EQ(slurp(fs::path(save) / "checkpoints" / "step-00000002" / "state.safetensors"), checkpoint);
  r = run_frugal("train --resume " + save + " --steps 3 --memory-limit 32MiB");
  EXPECT_EQ(r.status, 0) << r.err;
}

// Must-show 1 on small models: from the smallest feasible budget to 4x it, the chosen configuration
// runs, its ledger peak stays within the budget (and equals the plan), and the process's peak RSS
// within the budget + the documented process overhead (code, libraries, thread stacks, BLAS buffers).
TEST(MemoryAutopilot, ChosenConfigurationsFitFromTheSmallestBudgetToFourTimesIt) {
  const fs::path dir = scratch("autopilot_fit");
  for (const std::string& model : {kGpt, kDeepMlp}) {
    const int64_t smallest = smallest_feasible(model, 8);
    for (int64_t budget : {smallest, 2 * smallest, 4 * smallest}) {
      const fs::path summary = dir / "s.json";
      const CliResult r = run_frugal("train " + model + " --steps 2 --batch-size 8 --memory-budget " +
                                     std::to_string(budget) + " --summary " + summary.string());
      ASSERT_EQ(r.status, 0) << model << " budget " << budget << ": " << r.err;
      const auto s = read_json(summary);
      EXPECT_LE(s["memory"]["total"].get<int64_t>(), budget) << model;  // ledger bytes: exact, no tolerance
      EXPECT_EQ(s["memory"]["total"], s["predicted_memory"]["total"]) << model;
      EXPECT_EQ(s["memory_limit"].get<int64_t>(), budget);
      EXPECT_GT(s["predicted_step_time_s"].get<double>(), 0.0);  // a prediction was made (not a tolerance)
#if !defined(__SANITIZE_ADDRESS__)  // AddressSanitizer's shadow memory alone is about 100 MiB
      // A physical measure: the process beyond its ledger (code, libraries, thread stacks, BLAS
      // buffers) within kProcessOverheadBytes (tests/cli_support.h: 96 MiB documented in README "Memory
      // budget"; bench/process_overhead.sh measured at most 66 MiB over the settings that change it).
      EXPECT_LE(s["peak_rss_bytes"].get<int64_t>(), budget + kProcessOverheadBytes) << model;
#endif
    }
  }
}

// A run that must first measure the machine's rates (an empty cache) while other work keeps both
// cores busy still keeps its peak RSS within budget + the documented overhead: the measurement (about
// 160 MiB: a 64 MiB copy both ways, 8M parameters of optimizer state) runs in a child process, whose
// cost the summary and stderr report. In process it put this run 100 MiB over (issue 32).
TEST(MemoryAutopilot, MeasuringTheRatesFirstStaysWithinTheBudgetUnderLoad) {
  const fs::path dir = scratch("autopilot_empty_cache");
  const int64_t budget = 2 * smallest_feasible(kGpt, 8);
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int k = 0; k < 2; ++k)
    busy.emplace_back([&stop] {
      volatile uint64_t spin = 0;
      while (!stop.load(std::memory_order_relaxed)) spin = spin + 1;
    });
  const CliResult r = run_frugal("train " + kGpt + " --steps 2 --batch-size 8 --memory-budget " + std::to_string(budget) +
                                     " --summary " + (dir / "s.json").string(),
                                 "XDG_CACHE_HOME=" + (dir / "empty-cache").string());
  stop = true;
  for (std::thread& t : busy) t.join();
  ASSERT_EQ(r.status, 0) << r.err;
  const auto s = read_json(dir / "s.json");
  ASSERT_TRUE(s["rates_measurement"].is_object()) << "the rates were not measured: " << s.dump();
  // The child touches a 64 MiB copy's source and destination: its peak RSS is at least that (exact).
  EXPECT_GT(s["rates_measurement"]["peak_rss_bytes"].get<int64_t>(), int64_t{64} << 20);  // the copy's buffers
  EXPECT_NE(r.err.find("in a child process"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir / "empty-cache" / "frugal" / "machine_rates.json"));
#if !defined(__SANITIZE_ADDRESS__)  // AddressSanitizer's shadow memory alone is about 100 MiB
  // kProcessOverheadBytes (tests/cli_support.h; measured by bench/process_overhead.sh, whose "empty
  // cache and 2 busy loops" row is this run; README "Memory budget").
  EXPECT_LE(s["peak_rss_bytes"].get<int64_t>(), budget + kProcessOverheadBytes);
#endif
}

// What the child measurement cost is reported with the command's first output, not when measuring:
// a run refused after its rates were measured (here the plan over --memory-limit) still ends in one
// line, its error; a plan that succeeds reports it once.
TEST(MemoryAutopilot, MeasuringTheRatesLeavesARefusalOneLine) {
  const fs::path dir = scratch("rates_refusal");
  const std::string cache = "XDG_CACHE_HOME=" + (dir / "empty-cache").string();
  expect_one_line_error(run_frugal("train " + kGpt + " --steps 1 --memory-limit 1000", cache), "below this run's planned peak");
  EXPECT_TRUE(fs::exists(dir / "empty-cache" / "frugal" / "machine_rates.json")) << "the refusal came before the rates";
  const CliResult r = run_frugal("plan " + kGpt, "XDG_CACHE_HOME=" + (dir / "another-empty-cache").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const size_t first = r.err.find("in a child process");
  EXPECT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("in a child process", first + 1), std::string::npos) << "reported twice: " << r.err;
}

TEST(MemoryAutopilot, PlanPrintsTheFastestFittingConfigurationAndItsCommand) {
  const int64_t smallest = smallest_feasible(kGpt, 16);
  const CliResult r = run_frugal("plan " + kGpt + " --batch-size 16 --memory-budget " + std::to_string(3 * smallest) +
                                 " --allow precision --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto& candidates = j["candidates"];
  ASSERT_GE(j["fitting"].get<int>(), 1);
  EXPECT_EQ(j["chosen"], candidates[0]);
  bool bf16 = false;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const auto& c = candidates[i];
    EXPECT_EQ(c["micro_batch"].get<int>() * c["accum"].get<int>(), 16);
    EXPECT_EQ(c["fits"].get<bool>(), c["predicted_memory"]["total"].get<int64_t>() <= 3 * smallest);
    bf16 = bf16 || c["precision"] == "bf16";
    if (i > 0 && c["fits"].get<bool>()) {  // fastest first among those that fit
      EXPECT_LE(candidates[i - 1]["predicted_step_time_s"].get<double>(), c["predicted_step_time_s"].get<double>());
    }
  }
  EXPECT_TRUE(bf16) << "--allow precision adds bf16 candidates";
  const std::string command = j["command"];
  EXPECT_EQ(command.rfind("frugal train --arch gpt", 0), 0u) << command;
  for (const std::string& part : {"--micro-batch " + std::to_string(j["chosen"]["micro_batch"].get<int>()),
                                 "--checkpoint " + j["chosen"]["checkpoint"].get<std::string>(),
                                 "--memory-limit " + std::to_string(3 * smallest)})
    EXPECT_NE(command.find(part), std::string::npos) << part << " in " << command;
  EXPECT_EQ(command.find("--batch-size"), std::string::npos) << command;
}

// --allow optimizer adds 8-bit AdamW candidates: at a budget below AdamW's smallest total but above
// the 8-bit one's, the autopilot chooses it, and its run fits; without the leave it says what would fit.
TEST(MemoryAutopilot, AllowOptimizerChoosesEightBitAdamWWhenOnlyItFits) {
  const std::string model = "--arch gpt --layers 2 --dim 64 --heads 2 --ctx 8 --vocab 256 --data synthetic";
  const int64_t adamw = smallest_feasible(model, 4);
  const int64_t eight = smallest_feasible(model + " --optimizer adamw8bit", 4);
  ASSERT_LT(eight, adamw);
  const int64_t budget = (adamw + eight) / 2;
  const CliResult r = run_frugal("plan " + model + " --batch-size 4 --memory-budget " + std::to_string(budget) +
                                 " --allow optimizer --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["chosen"]["optimizer"], "adamw8bit");
  EXPECT_NE(j["command"].get<std::string>().find("--optimizer adamw8bit"), std::string::npos) << j["command"];
  const fs::path summary = scratch("autopilot_optimizer") / "s.json";
  const CliResult t = run_frugal("train " + model + " --steps 2 --batch-size 4 --memory-budget " + std::to_string(budget) +
                                 " --allow optimizer --summary " + summary.string());
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_LE(read_json(summary)["memory"]["total"].get<int64_t>(), budget);
  expect_one_line_error(run_frugal("plan " + model + " --batch-size 4 --memory-budget " + std::to_string(budget)),
                        "8-bit AdamW (--allow optimizer)");
}

// --optimizer-block with --allow optimizer sizes the adamw8bit candidates' blocks. Where the
// autopilot chooses AdamW (a budget both fit) the block has nothing to size: the printed command drops
// it and runs, and train with the budget trains (both were refused as "--optimizer-block without
// adamw8bit" after the search).
TEST(MemoryAutopilot, OptimizerBlockGoesWithTheEightBitCandidatesOnly) {
  const std::string model = "--arch gpt --layers 2 --dim 64 --heads 2 --ctx 8 --vocab 256 --data synthetic";
  const std::string budget = std::to_string(4 * smallest_feasible(model, 4));
  const CliResult r = run_frugal("plan " + model + " --batch-size 4 --memory-budget " + budget +
                                 " --allow optimizer --optimizer-block 64 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["chosen"]["optimizer"], "adamw");
  const std::string command = j["command"];
  EXPECT_EQ(command.find("--optimizer-block"), std::string::npos) << command;
  const std::string flags = command.substr(command.find(" train ") + 7);
  const CliResult printed = run_frugal("train " + flags + " --steps 1");
  EXPECT_EQ(printed.status, 0) << command << ": " << printed.err;
  const CliResult t = run_frugal("train " + model + " --steps 1 --batch-size 4 --memory-budget " + budget +
                                 " --allow optimizer --optimizer-block 64");
  EXPECT_EQ(t.status, 0) << t.err;
}

TEST(MemoryAutopilot, BadRequestsAreRefusedWithOneLine) {
  const int64_t smallest = smallest_feasible(kGpt, 8);
  expect_one_line_error(run_frugal("plan " + kGpt + " --batch-size 8 --memory-budget " + std::to_string(smallest / 2)),
                        "the smallest configuration needs");
  expect_one_line_error(run_frugal("train " + kGpt + " --batch-size 8 --memory-budget " + std::to_string(smallest / 2)),
                        "nothing fits in --memory-budget");
  expect_one_line_error(run_frugal("plan " + kGpt + " --batch-size 8 --micro-batch 3 --memory-budget 1GiB"),
                        "--micro-batch 3 does not divide --batch-size 8");
  expect_one_line_error(run_frugal("plan " + kGpt + " --batch-size 8 --micro-batch 8 --checkpoint store-all --memory-budget " +
                                   std::to_string(smallest + 1024)),
                        "with --micro-batch 8 with --checkpoint store-all");
  expect_one_line_error(run_frugal("train " + kGpt + " --batch-size 8 --accum 2 --memory-budget 1GiB"),
                        "--accum is chosen by --memory-budget");
  expect_one_line_error(run_frugal("train " + kGpt + " --batch-size 8"), "--batch-size and --allow go with --memory-budget");
  expect_one_line_error(run_frugal("plan " + kGpt + " --memory-budget 1GiB"), "--memory-budget needs --batch-size");
  expect_one_line_error(run_frugal("plan " + kGpt + " --batch-size 8 --memory-budget 1GiB --allow optimizer --optimizer sgd"),
                        "drop --optimizer or --allow optimizer");
  expect_one_line_error(run_frugal("plan " + kGpt + " --batch-size 8 --memory-budget 1GiB --allow speed"),
                        "--allow takes precision and/or optimizer");
  expect_one_line_error(run_frugal("train " + kGpt + " --batch-size 8 --memory-budget lots"), "lots");
  expect_one_line_error(run_frugal("train " + kGpt + " --memory-limit 0"), "--memory-limit must be positive");
}

// The cost model's input: an MLP's counted products are exactly its linear layers' forward, input
// gradient (not for the first layer, whose input is data) and weight gradient products, and
// recomputation adds forward products only.
TEST(CostModel, CountsEveryMatrixProductOfAStep) {
  MlpConfig config;
  config.in_features = 12;
  config.hidden = 20;
  config.out_features = 6;
  config.n_layers = 4;
  TrainOptions o;
  o.steps = 2;
  o.micro_batch = 5;
  o.accum = 3;
  const auto factory = [&] { return std::make_unique<Mlp>(config); };
  const double rows = 5.0 * 3.0;  // per step
  const double macs = 12.0 * 20 + 20.0 * 20 * 2 + 20.0 * 6;  // multiply-adds per sample and product kind
  const MemoryPlan stored = plan_training_memory(factory, o);
  EXPECT_DOUBLE_EQ(stored.work.gemms.gemm_flops(), 2 * rows * (3 * macs - 12.0 * 20));
  o.checkpoint = "memory-poor";
  const MemoryPlan recomputed = plan_training_memory(factory, o);
  // forward products: each block as often as the schedule runs it
  const double block_macs[] = {12.0 * 20, 20.0 * 20, 20.0 * 20, 20.0 * 6};
  double forward = 0;
  for (int i = 0; i < 4; ++i) forward += 2 * rows * block_macs[i] * (4 - i);  // memory-poor: block i runs 4 - i times
  EXPECT_DOUBLE_EQ(recomputed.work.gemms.gemm_flops(), forward + 2 * rows * (2 * macs - 12.0 * 20));
  EXPECT_GT(predict_step_time(recomputed.work, MachineRates{{100, 100, 100}, {}, 10}).total(),
            predict_step_time(stored.work, MachineRates{{100, 100, 100}, {}, 10}).total());
}

TEST(CostModel, GemmRatesInterpolateBetweenMeasuredSizes) {
  MachineRates r;
  r.gemm_f32_gflops = {10, 40, 160};
  r.gemm_half_gflops = {20, 80, 320};
  EXPECT_DOUBLE_EQ(gemm_gflops_for(r, {8, 8, 8, GemmUnits::F32}), 10);  // flat below the smallest size
  EXPECT_DOUBLE_EQ(gemm_gflops_for(r, {4096, 4096, 4096, GemmUnits::F32}), 160);
  // Interpolation in double (no BLAS): a cube root, three logs, exp and a few products, each within an
  // ulp (2^-52) of its result, the exponent about log 80 = 4.4: ~1e-14 of 80 at most; 1e-9 is far above.
  EXPECT_NEAR(gemm_gflops_for(r, {256, 256, 256, GemmUnits::Half}), 80, 1e-9);
  EXPECT_NEAR(gemm_gflops_for(r, {128, 128, 128, GemmUnits::F32}), 20, 1e-9);  // halfway in log-log
  EXPECT_NEAR(gemm_gflops_for(r, {64, 256, 1024, GemmUnits::F32}), 40, 1e-9);  // the cube of the same volume
}
