// A value the user asks for is honoured or refused with one line, never silently changed (issue 32):
// for each family of flags, `plan --json` and the train summary's "run" (read back from the model and
// options that were built, train/run_description.h) show what was asked, and a flag the run would
// leave unused is an error.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_support.h"

namespace {

using frugal::testing::CliResult;
using frugal::testing::expect_one_line_error;
using frugal::testing::run_frugal;
using frugal::testing::scratch;
using frugal::testing::slurp;
namespace fs = std::filesystem;

const std::string kGpt = "--arch gpt --layers 2 --dim 32 --heads 2 --ctx 32 --vocab 64 --data synthetic";
const std::string kLlama = "--arch llama --layers 2 --dim 32 --heads 4 --vocab 64 --data synthetic --micro-batch 1";

nlohmann::json plan_json(const std::string& flags) {
  const CliResult r = run_frugal("plan " + flags + " --json");
  EXPECT_EQ(r.status, 0) << flags << ": " << r.err;
  return r.status == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

nlohmann::json train_summary(const std::string& flags) {
  const fs::path summary = scratch("settings") / "s.json";
  fs::remove(summary);
  const CliResult r = run_frugal("train " + flags + " --steps 1 --summary " + summary.string());
  EXPECT_EQ(r.status, 0) << flags << ": " << r.err;
  return r.status == 0 ? nlohmann::json::parse(slurp(summary)) : nlohmann::json::object();
}

}  // namespace

// Must-show 4: a fresh Llama plans every position --ctx asks for, past Llama's default cap of 2048
// (which once planned --ctx 8192 as 2048, byte for byte); activations grow with the context.
TEST(CliSettings, ModelShapeFlagsReachThePlannedModel) {
  int64_t previous = 0;
  for (int64_t ctx : {2048, 4096, 8192}) {
    const nlohmann::json j = plan_json(kLlama + " --ctx " + std::to_string(ctx));
    ASSERT_TRUE(j.contains("run"));
    EXPECT_EQ(j["run"]["context"].get<int64_t>(), ctx);
    EXPECT_EQ(j["run"]["config"]["max_position_embeddings"].get<int64_t>(), ctx);
    const int64_t activations = j["predicted_memory"]["activations"].get<int64_t>();
    // Planned bytes (exact, no rounding): every per-token activation doubles with T (attention's
    // T^2 terms more), so 1.5x separates growth from a context capped at 2048 (1x).
    EXPECT_GT(activations, previous + previous / 2) << "--ctx " << ctx;  // about doubles with T
    previous = activations;
  }
  const nlohmann::json llama = plan_json(kLlama + " --ctx 16 --kv-heads 1 --mlp-dim 40 --head-dim 16 --qk-norm");
  EXPECT_EQ(llama["run"]["config"]["tie_word_embeddings"], true);
  EXPECT_EQ(llama["run"]["config"]["num_key_value_heads"], 1);
  EXPECT_EQ(llama["run"]["config"]["intermediate_size"], 40);
  EXPECT_EQ(llama["run"]["config"]["head_dim"], 16);
  EXPECT_EQ(llama["run"]["config"]["model_type"], "qwen3");
  // --untied-head: the head's own vocab x dim weight, in the plan's parameter bytes too.
  const nlohmann::json untied = plan_json(kLlama + " --ctx 16 --untied-head");
  const nlohmann::json tied = plan_json(kLlama + " --ctx 16");
  EXPECT_EQ(untied["run"]["config"]["tie_word_embeddings"], false);
  const int64_t head = untied["run"]["config"]["vocab_size"].get<int64_t>() * untied["run"]["config"]["hidden_size"].get<int64_t>();
  EXPECT_EQ(untied["predicted_memory"]["params"].get<int64_t>() - tied["predicted_memory"]["params"].get<int64_t>(),
            head * 4);
  const nlohmann::json gpt = plan_json("--arch gpt --layers 3 --dim 48 --heads 3 --ctx 24 --vocab 70 --data synthetic");
  EXPECT_EQ(gpt["run"]["context"], 24);
  EXPECT_EQ(gpt["run"]["config"]["n_layer"], 3);
  EXPECT_EQ(gpt["run"]["config"]["n_embd"], 48);
  EXPECT_EQ(gpt["run"]["config"]["n_head"], 3);
  EXPECT_EQ(gpt["run"]["config"]["vocab_size"], 70);
}

// --quantize-head: the untied frozen head stored in nf4 takes its fp32 bytes (V x D x 4) out of the
// plan's peak and puts nf4's in (codes V D / 2, one absmax code per 64 values, one fp32 scale per 256
// of those); it trains; and it is refused for a tied head and a base that is not nf4/int8. (At a
// context of 256 the step's peak is above the moment of quantising, when both forms of the head and
// a chunk of fp32 rows exist.)
TEST(CliSettings, QuantizeHeadStoresTheUntiedHeadInTheBaseFormat) {
  const std::string lora = kLlama + " --ctx 256 --untied-head --lora-rank 2 --base-precision nf4";
  const nlohmann::json plain = plan_json(lora);
  const nlohmann::json quantized = plan_json(lora + " --quantize-head");
  const int64_t head = 64 * 32, blocks = head / 64;
  EXPECT_EQ(plain["predicted_memory"]["total"].get<int64_t>() - quantized["predicted_memory"]["total"].get<int64_t>(),
            head * 4 - (head / 2 + blocks + (blocks + 255) / 256 * 4));
  const nlohmann::json s = train_summary(lora + " --quantize-head");
  ASSERT_TRUE(s.contains("final_loss")) << s.dump();
  EXPECT_TRUE(std::isfinite(s["final_loss"].get<double>()));
  expect_one_line_error(run_frugal("plan " + kLlama + " --lora-rank 2 --base-precision nf4 --quantize-head"), "tied");
  expect_one_line_error(
      run_frugal("plan " + kLlama + " --untied-head --lora-rank 2 --base-precision bf16 --quantize-head"),
      "--base-precision nf4 or int8");
}

// A run with a quantised head resumes bit for bit: the run record keeps --quantize-head, so the resumed
// run quantises the head it rebuilds exactly as the first run did.
TEST(CliSettings, AQuantisedHeadRunResumesBitForBit) {
  const fs::path dir = scratch("resume_quantized_head");
  const std::string run = "train " + kLlama + " --ctx 16 --untied-head --lora-rank 2 --base-precision nf4 " +
                          "--quantize-head --steps 4 --save " + (dir / "ck").string() + " --save-every 2 --summary ";
  CliResult r = run_frugal(run + (dir / "whole.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  fs::remove_all(dir / "ck" / "checkpoints" / "step-00000004");
  r = run_frugal("train --resume " + (dir / "ck").string() + " --summary " + (dir / "resumed.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("--quantize-head"), std::string::npos) << r.err;
  const auto summary = [&](const char* name) { return nlohmann::json::parse(slurp(dir / name)); };
  EXPECT_EQ(summary("resumed.json")["final_loss"].get<double>(), summary("whole.json")["final_loss"].get<double>());
}

TEST(CliSettings, TrainingFlagsReachTheTrainer) {
  const nlohmann::json s = train_summary(kGpt + " --micro-batch 2 --accum 3 --optimizer adamw8bit --optimizer-block 64 "
                                         "--lr 0.004 --weight-decay 0.25 --clip-grad-norm 0.5 --warmup 7 --schedule "
                                         "constant --seed 11 --checkpoint optimal --activation-budget 200KiB --threads 1");
  ASSERT_TRUE(s.contains("run"));
  const nlohmann::json& t = s["run"]["training"];
  EXPECT_EQ(t["micro_batch"], 2);
  EXPECT_EQ(t["accum"], 3);
  EXPECT_EQ(t["optimizer"], "adamw8bit");
  EXPECT_EQ(t["optimizer_block"], 64);
  // The options' floats as the user wrote them (the shortest decimal of the float), exactly.
  EXPECT_EQ(t["lr"].get<double>(), 0.004);
  EXPECT_EQ(t["weight_decay"].get<double>(), 0.25);
  EXPECT_EQ(t["clip_grad_norm"], 0.5);
  EXPECT_EQ(t["warmup"], 7);
  EXPECT_EQ(t["schedule"], "constant");
  EXPECT_EQ(t["seed"], 11);
  EXPECT_EQ(t["checkpoint"], "optimal");
  EXPECT_EQ(t["activation_budget"], 200 * 1024);
  EXPECT_EQ(t["threads"], 1);
  const nlohmann::json mlp = train_summary("--arch mlp --norm batch --data synthetic --micro-batch 4 --accum 2 --bn-stats batch");
  EXPECT_EQ(mlp["run"]["training"]["bn_stats"], "batch");
}

TEST(CliSettings, PrecisionFlagsReachTheTrainer) {
  const nlohmann::json fp16 = train_summary(kGpt + " --precision fp16 --loss-scale-init 1024 --loss-scale-interval 7 "
                                            "--loss-scale-growth 4 --loss-scale-backoff 0.25");
  const nlohmann::json& scale = fp16["run"]["precision"]["loss_scale"];
  EXPECT_EQ(fp16["run"]["precision"]["precision"], "fp16");
  EXPECT_EQ(scale["mode"], "dynamic");
  EXPECT_EQ(scale["init"], 1024.0);
  EXPECT_EQ(scale["interval"], 7);
  EXPECT_EQ(scale["growth"], 4.0);
  EXPECT_EQ(scale["backoff"], 0.25);
  const nlohmann::json bf16 = train_summary(kGpt + " --precision bf16 --master-weights off --loss-scale 512");
  EXPECT_EQ(bf16["run"]["precision"]["master_weights"], false);
  EXPECT_EQ(bf16["run"]["precision"]["loss_scale"], (nlohmann::json{{"mode", "static"}, {"value", 512.0}}));
}

TEST(CliSettings, LoraFlagsReachTheAdapters) {
  const nlohmann::json s = train_summary(kGpt + " --lora-rank 3 --lora-alpha 6 --lora-dropout 0.1 --lora-targets "
                                         "c_attn,c_fc --base-precision bf16");
  const nlohmann::json& lora = s["run"]["lora"];
  EXPECT_EQ(lora["rank"], 3);
  EXPECT_EQ(lora["alpha"], 6.0);
  EXPECT_EQ(lora["dropout"], 0.1);
  EXPECT_EQ(lora["targets"], (nlohmann::json{"h.0.attn.c_attn", "h.0.mlp.c_fc", "h.1.attn.c_attn", "h.1.mlp.c_fc"}));
  EXPECT_EQ(lora["base_storage"], (nlohmann::json{"bf16"}));
  const nlohmann::json nf4 = plan_json(kLlama + " --ctx 16 --lora-rank 2 --base-precision nf4");
  EXPECT_EQ(nf4["run"]["lora"]["base_storage"], (nlohmann::json{"nf4"}));
  EXPECT_EQ(nf4["run"]["lora"]["targets"].size(), 4u);  // q_proj and v_proj of 2 layers (PEFT's default)
  EXPECT_TRUE(train_summary(kGpt)["run"]["lora"].is_null());
}

TEST(CliSettings, KernelFlagsReachTheModel) {
  const nlohmann::json s = train_summary(kGpt + " --attention flash --attention-tile 8 --loss-chunk 24");
  EXPECT_EQ(s["kernels"]["attention"]["kernel"], "fused (flash)");
  EXPECT_EQ(s["kernels"]["attention"]["tile"], 8);
  EXPECT_EQ(s["kernels"]["lm_head"]["chunk_rows"], 24);
  const nlohmann::json materialized = plan_json(kGpt + " --attention materialized");
  EXPECT_EQ(materialized["kernels"]["attention"]["kernel"], "materialising");
}

// Each of these was once accepted and then had no effect.
TEST(CliSettings, SettingsTheRunWouldLeaveUnusedAreRefused) {
  expect_one_line_error(run_frugal("train " + kGpt + " --steps 1 --optimizer-block 64"), "--optimizer-block");
  expect_one_line_error(run_frugal("plan " + kGpt + " --optimizer sgd --optimizer-block 64"), "--optimizer-block");
  expect_one_line_error(run_frugal("train " + kGpt + " --steps 1 --bn-stats batch"), "--bn-stats");
  expect_one_line_error(run_frugal("train " + kGpt + " --steps 1 --precision bf16 --loss-scale-init 1024"),
                        "--loss-scale-init");
  expect_one_line_error(run_frugal("train " + kGpt + " --steps 1 --precision fp16 --loss-scale none --loss-scale-interval 5"),
                        "dynamic loss scale");
  expect_one_line_error(run_frugal("train " + kGpt + " --steps 1 --precision fp16 --loss-scale 128 --loss-scale-init 1024"),
                        "fixed scale");
  expect_one_line_error(run_frugal("train " + kGpt + " --steps 1 --attention-tile 8"), "--attention flash");
  expect_one_line_error(run_frugal("plan " + kGpt + " --attention materialized --attention-tile 8"), "--attention-tile");
  expect_one_line_error(run_frugal("train " + kGpt + " --steps 1 --zero 1"), "mpirun");
  expect_one_line_error(run_frugal("plan " + kGpt + " --zero 2"), "--ranks N");
}
