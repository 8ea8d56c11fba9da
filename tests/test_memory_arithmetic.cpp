// The ledger's figures against the arithmetic of the model's shapes (computed here by hand, not by
// the code under test), and the planner's prediction against the measured run.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "models/gpt.h"
#include "models/mlp.h"
#include "train/planner.h"
#include "train/trainer.h"

using namespace frugal;

namespace {
TrainOptions two_steps(int64_t micro_batch) {
  TrainOptions o;
  o.steps = 2;
  o.micro_batch = micro_batch;
  return o;
}
}  // namespace

TEST(MemoryArithmetic, GptParamsActivationsGradsOptimizer) {
  const GptConfig c = frugal::testing::tiny_gpt_config();
  const int64_t B = 3, T = 8, D = 16, H = 2, L = 2, V = 23;  // (the config's numbers, written out)
  ASSERT_TRUE(c.n_positions == T && c.n_embd == D && c.n_head == H && c.n_layer == L && c.vocab_size == V);
  const TrainOptions options = two_steps(B);

  MemoryLedger ledger;
  {
    LedgerScope scope(ledger);
    Gpt model(c);
    model.init_weights(1);
    RandomTokens data(V, T, 1);
    Trainer trainer(model, data, options);
    trainer.step(0);
    trainer.step(1);
  }
  // Parameters: wte (V, D), wpe (T, D), per block 2 LayerNorms (2 x 2D), c_attn (D, 3D) + 3D,
  // attn.c_proj D*D + D, mlp.c_fc (D, 4D) + 4D, mlp.c_proj (4D, D) + D; ln_f 2D. The head is tied.
  const int64_t params = V * D + T * D + L * (4 * D + 3 * D * D + 3 * D + D * D + D + 4 * D * D + 4 * D + 4 * D * D + D) + 2 * D;
  EXPECT_EQ(ledger.peak()[MemCategory::Params], static_cast<size_t>(params * 4));
  EXPECT_EQ(ledger.peak()[MemCategory::Grads], static_cast<size_t>(params * 4));
  EXPECT_EQ(ledger.peak()[MemCategory::Optimizer], static_cast<size_t>(2 * params * 4));  // AdamW m and v
  // Activations peak at the end of the forward pass. Kept per transformer block: ln_1 output (BTD)
  // + mean/rstd (2BT), qkv (3BTD), attention output (BTD) + probabilities (BHTT: at T = 8 Auto runs
  // the materialising kernel; the fused one's bytes are in the next test), first residual
  // (BTD), ln_2 output (BTD) + 2BT, c_fc output (4BTD), GELU output (4BTD), block output (BTD):
  // 16 BTD + 4 BT + BHTT floats. Plus token ids and targets (2 BT int32), the embedding output
  // (BTD) and ln_f (BTD + 2BT); no logits: the tied head is fused with the loss (nn/lm_head.h).
  const int64_t per_block = 16 * B * T * D + 4 * B * T + B * H * T * T;
  const int64_t activations = 2 * B * T + B * T * D + L * per_block + B * T * D + 2 * B * T;
  EXPECT_EQ(ledger.peak()[MemCategory::Activations], static_cast<size_t>(activations * 4));

  const MemoryPlan plan = plan_training_memory(
      [&] { return std::make_unique<Gpt>(c); }, options);
  EXPECT_EQ(plan.peak.bytes, ledger.peak().bytes);
  EXPECT_EQ(plan.peak.total, ledger.peak().total);
  EXPECT_EQ(plan.forward_calls, L + 2);
  EXPECT_EQ(plan.layer_count, L + 2);
}

// The fused attention kernel, forced (Auto picks the materialising one at T = 8): it keeps one
// log-sum-exp per row (BHT) instead of the probabilities (BHTT), and its saved output is the buffer
// c_proj saves as its input, counted once.
TEST(MemoryArithmetic, GptActivationsWithFusedAttention) {
  const GptConfig c = frugal::testing::tiny_gpt_config();
  const int64_t B = 3, T = 8, D = 16, H = 2, L = 2, V = 23;
  ASSERT_TRUE(c.n_positions == T && c.n_embd == D && c.n_head == H && c.n_layer == L && c.vocab_size == V);
  const TrainOptions options = two_steps(B);
  auto make = [&] {
    auto model = std::make_unique<Gpt>(c);
    model->set_attention_kernel(AttentionKernel::Flash);
    model->set_attention_tile(3);  // three query tiles, the last partial
    return model;
  };
  MemoryLedger ledger;
  {
    LedgerScope scope(ledger);
    std::unique_ptr<Gpt> model = make();
    model->init_weights(1);
    RandomTokens data(V, T, 1);
    Trainer trainer(*model, data, options);
    trainer.step(0);
    trainer.step(1);
  }
  const int64_t per_block = 16 * B * T * D + 4 * B * T + B * H * T;
  const int64_t activations = 2 * B * T + B * T * D + L * per_block + B * T * D + 2 * B * T;  // no logits: the head is fused with the loss
  EXPECT_EQ(ledger.peak()[MemCategory::Activations], static_cast<size_t>(activations * 4));
  const MemoryPlan plan = plan_training_memory([&] { return std::unique_ptr<Model>(make()); }, options);
  EXPECT_EQ(plan.peak.bytes, ledger.peak().bytes);
  EXPECT_EQ(plan.peak.total, ledger.peak().total);
}

// In every precision, per layer the fused kernel keeps the log-sum-exps (BHT, fp32) where the
// materialising one keeps the probabilities (BHTT, in the storage type), and nothing else: its saved
// output is c_proj's saved input, one buffer (under half precision one half copy, not two).
TEST(MemoryArithmetic, FusedAttentionDropsOnlyTheProbabilitiesInEveryPrecision) {
  const GptConfig c = frugal::testing::tiny_gpt_config();
  const int64_t B = 3, T = 8, H = 2, L = 2;
  for (const DType precision : {DType::F32, DType::F16, DType::BF16}) {
    auto activations = [&](AttentionKernel kernel) {
      TrainOptions o = two_steps(B);
      o.precision = precision;
      const MemoryPlan plan = plan_training_memory(
          [&] {
            auto model = std::make_unique<Gpt>(c);
            model->set_attention_kernel(kernel);
            return std::unique_ptr<Model>(std::move(model));
          },
          o);
      return static_cast<int64_t>(plan.peak[MemCategory::Activations]);
    };
    const int64_t bytes = precision == DType::F32 ? 4 : 2;
    EXPECT_EQ(activations(AttentionKernel::Materialized) - activations(AttentionKernel::Flash),
              L * (B * H * T * T * bytes - B * H * T * 4))
        << precision_name(precision);
  }
}

TEST(MemoryArithmetic, MlpParamsAndActivations) {
  MlpConfig c;
  c.in_features = 10;
  c.hidden = 12;
  c.out_features = 3;
  c.n_layers = 4;
  const int64_t B = 5;
  const TrainOptions options = two_steps(B);
  MemoryLedger ledger;
  {
    LedgerScope scope(ledger);
    Mlp model(c);
    model.init_weights(2);
    SyntheticRegression data(c.in_features, c.out_features, 2);
    Trainer trainer(model, data, options);
    trainer.step(0);
    trainer.step(1);
  }
  const int64_t params = (10 * 12 + 12) + 2 * (12 * 12 + 12) + (12 * 3 + 3);
  EXPECT_EQ(ledger.peak()[MemCategory::Params], static_cast<size_t>(params * 4));
  // Inputs (B, in) and targets (B, out); each hidden block keeps its ReLU output (B, hidden),
  // whose input (the linear output) lives only while ReLU runs; the last layer's output (B, out).
  // Peak: at the last hidden block's ReLU (linear output + ReLU output of the third hidden
  // layer) or at the end (prediction), whichever is larger.
  const int64_t kept = B * 10 + B * 3 + 3 * B * 12;
  const int64_t activations = kept + std::max<int64_t>(B * 12, B * 3);
  EXPECT_EQ(ledger.peak()[MemCategory::Activations], static_cast<size_t>(activations * 4));
  const MemoryPlan plan = plan_training_memory([&] { return std::make_unique<Mlp>(c); }, options);
  EXPECT_EQ(plan.peak.bytes, ledger.peak().bytes);
  EXPECT_EQ(plan.peak.total, ledger.peak().total);
}
