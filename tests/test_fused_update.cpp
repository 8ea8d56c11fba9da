// --fused-update (train/trainer.h): each block's parameters updated during the backward pass as
// soon as their gradients are final, the gradients freed at once. The same weights as the unfused
// run, bit for bit (each parameter's update reads the same gradient and state; no block's backward
// reads a weight of a block already updated); the gradient category's peak is about one block's; the
// combinations that need every gradient first are refused.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "fixtures.h"
#include "kernels/convert.h"
#include "models/gpt.h"
#include "models/lora_setup.h"
#include "train/planner.h"
#include "train/trainer.h"

using namespace frugal;

namespace {
TrainOptions options_for(const std::string& optimizer, bool fused) {
  TrainOptions o;
  o.steps = 20;
  o.micro_batch = 3;
  o.optimizer = optimizer;
  o.lr = 3e-3f;
  o.clip_grad_norm = 0;
  o.weight_decay = 0.01f;
  o.fused_update = fused;
  return o;
}

// The model's parameters after `options.steps` steps on random tokens.
std::vector<std::vector<float>> train(const TrainOptions& options, bool lora = false) {
  const GptConfig c = frugal::testing::tiny_gpt_config();
  Gpt model(c);
  model.init_weights(3);
  if (lora) {
    LoraSettings s;
    s.config.rank = 2;
    s.targets = {"c_attn", "c_fc"};
    apply_lora(model, s, 4);
  }
  RandomTokens data(c.vocab_size, c.n_positions, 5);
  Trainer trainer(model, data, options);
  for (int64_t s = 0; s < options.steps; ++s) trainer.step(s);
  trainer.finish();
  std::vector<std::vector<float>> out;
  for (Param* p : model.params()) {
    const Tensor value = widen(p->value);  // (a frozen LoRA base stays bf16 after finish())
    out.emplace_back(value.f32(), value.f32() + value.numel());
  }
  return out;
}
}  // namespace

TEST(FusedUpdate, WeightsBitIdenticalToTheUnfusedRun) {
  for (const std::string optimizer : {"sgd", "adamw", "adamw8bit"}) {
    const auto unfused = train(options_for(optimizer, false));
    const auto fused = train(options_for(optimizer, true));
    EXPECT_EQ(fused, unfused) << optimizer;
  }
  // With checkpointing, bf16 compute copies with fp32 masters, and LoRA.
  TrainOptions o = options_for("adamw", false);
  o.checkpoint = "sqrt";
  o.precision = DType::BF16;
  const auto unfused = train(o, true);
  o.fused_update = true;
  EXPECT_EQ(train(o, true), unfused) << "sqrt, bf16, LoRA";
}

// The gradient category holds one block's gradients at a time, plus the tied embedding's, whose
// gradient the LM head starts in the loss and the embedding's backward finishes; planned = measured.
TEST(FusedUpdate, GradientPeakIsTheLargestBlocksPlusTheTiedEmbedding) {
  GptConfig c = frugal::testing::tiny_gpt_config();
  c.n_layer = 4;
  TrainOptions o = options_for("adamw", true);
  o.steps = 2;
  MemoryLedger ledger;
  size_t largest_block = 0, embedding = 0, all = 0;
  {
    LedgerScope scope(ledger);
    Gpt model(c);
    model.init_weights(1);
    for (const auto& block : model.blocks()) {
      std::vector<Param*> params;
      block->collect_params(params);
      size_t bytes = 0;
      for (Param* p : params) bytes += p->value.nbytes();
      if (block == model.blocks().front()) embedding = bytes;  // wte and wpe
      else largest_block = std::max(largest_block, bytes);
    }
    for (Param* p : model.params()) all += p->value.nbytes();
    RandomTokens data(c.vocab_size, c.n_positions, 1);
    Trainer trainer(model, data, o);
    trainer.step(0);
    trainer.step(1);
  }
  // Byte counts, exact: no rounding enters. At most one block's gradients and the embedding's live at once.
  EXPECT_LE(ledger.peak()[MemCategory::Grads], largest_block + embedding);
  // Not the whole model's: one of 4 blocks plus the embedding is 3776 of 13648 numbers (0.28) here.
  EXPECT_LT(ledger.peak()[MemCategory::Grads], all / 2);
  const MemoryPlan plan = plan_training_memory([&] { return std::unique_ptr<Model>(std::make_unique<Gpt>(c)); }, o);
  EXPECT_EQ(plan.peak.bytes, ledger.peak().bytes);
}

TEST(FusedUpdate, RefusesWhatNeedsEveryGradientFirst) {
  auto refused = [](TrainOptions o, const std::string& flag) {
    try {
      o.validate();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
      return true;
    }
    return false;
  };
  TrainOptions o = options_for("adamw", true);
  o.accum = 2;
  EXPECT_TRUE(refused(o, "--accum"));
  o = options_for("adamw", true);
  o.clip_grad_norm = 1.0;
  EXPECT_TRUE(refused(o, "--clip-grad-norm 0"));
  o = options_for("adamw", true);
  o.precision = DType::F16;
  EXPECT_TRUE(refused(o, "--loss-scale none"));
  o.loss_scale.mode = "none";
  EXPECT_FALSE(refused(o, ""));
  o = options_for("adamw", true);
  o.precision = DType::BF16;
  EXPECT_FALSE(refused(o, ""));
}
