// Gradient accumulation is the full-batch gradient: for GPT (including a ragged batch whose
// micro-batches hold different numbers of counted tokens), the linear model and an MLP without
// BatchNorm. The naive normalisation fails on the ragged batch; BatchNorm's gradients do differ;
// --bn-stats batch gives the full batch's running statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "core/error.h"
#include "fixtures.h"
#include "kernels/cross_entropy.h"
#include "models/gpt.h"
#include "models/mlp.h"
#include "nn/batchnorm.h"
#include "nn/sequential.h"
#include "train/accumulate.h"
#include "train/data.h"
#include "train/executor.h"
#include "train/gradient_snapshot.h"
#include "train/trainer.h"

using namespace frugal;
using namespace frugal::testing;

namespace {
using Grads = GradientSnapshot;
Grads accumulated(const ModelMaker& make, const Batch& batch, int64_t accum) {
  return accumulated_gradients(make, batch, accum);
}

// The mistake this design avoids: each micro-batch divided by its own count, then by K.
Grads naive(const ModelMaker& make, const Batch& batch, int64_t accum) {
  return naively_normalised_gradients(make, batch, accum);
}

double max_rel_diff(const Grads& a, const Grads& b) { return max_relative_difference(a, b); }

ModelMaker gpt_maker() {
  GptConfig c = tiny_gpt_config();
  c.n_positions = 12;
  c.vocab_size = 37;
  return model_maker<Gpt>(c, 11);
}

// 8 sequences of 12 tokens; sequence s has its first `step` * s targets ignored, so micro-batches
// count different numbers of tokens. With step 2 the last two sequences count none at all.
Batch ragged_gpt_batch(int64_t step) {
  RandomTokens data(37, 12, 5);
  Batch b = data.batch(0, 8);
  for (int64_t s = 0; s < 8; ++s)
    for (int64_t t = 0; t < std::min<int64_t>(step * s, 12); ++t) b.targets.i32()[s * 12 + t] = kIgnoreIndex;
  return b;
}

ModelMaker mlp_maker(const std::string& norm) {
  return model_maker<Mlp>(MlpConfig{.in_features = 6, .hidden = 12, .out_features = 3, .n_layers = 3, .norm = norm}, 12);
}
}  // namespace

TEST(Accumulation, GptRaggedBatchEqualsFullBatch) {
  const Batch batch = ragged_gpt_batch(2);  // includes a micro-batch with no counted token
  const Grads full = accumulated(gpt_maker(), batch, 1);
  for (int64_t k : {2, 4, 8}) EXPECT_LE(max_rel_diff(accumulated(gpt_maker(), batch, k), full), 1e-5) << "K=" << k;
}

TEST(Accumulation, NaiveNormalisationFailsOnTheRaggedBatch) {
  const Batch batch = ragged_gpt_batch(1);  // micro-batches of 2 count 23, 19, 15 and 11 tokens
  for (int64_t k : {2, 4}) EXPECT_LE(max_rel_diff(accumulated(gpt_maker(), batch, k), accumulated(gpt_maker(), batch, 1)), 1e-5);
  const Grads full = accumulated(gpt_maker(), batch, 1);
  EXPECT_GT(max_rel_diff(naive(gpt_maker(), batch, 4), full), 1e-2);
  // On a batch without padding the two agree: the test can tell the difference only through raggedness.
  RandomTokens data(37, 12, 5);
  const Batch even = data.batch(0, 8);
  EXPECT_LE(max_rel_diff(naive(gpt_maker(), even, 4), accumulated(gpt_maker(), even, 1)), 1e-5);
}

TEST(Accumulation, LinearMseEqualsFullBatch) {
  auto make = [] {
    auto m = std::make_unique<LinearRegression>(5, 3);
    m->init_weights(13);
    return std::unique_ptr<Model>(std::move(m));
  };
  SyntheticRegression data(5, 3, 6);
  const Batch batch = data.batch(0, 16);
  const Grads full = accumulated(make, batch, 1);
  for (int64_t k : {2, 4, 16}) EXPECT_LE(max_rel_diff(accumulated(make, batch, k), full), 1e-5) << "K=" << k;
}

TEST(Accumulation, MlpWithoutBatchNormEqualsFullBatch) {
  SyntheticRegression data(6, 3, 7);
  const Batch batch = data.batch(0, 16);
  for (const std::string norm : {"none", "layer", "group"}) {
    const Grads full = accumulated(mlp_maker(norm), batch, 1);
    for (int64_t k : {2, 4, 16})
      EXPECT_LE(max_rel_diff(accumulated(mlp_maker(norm), batch, k), full), 1e-5) << norm << " K=" << k;
  }
}

TEST(Accumulation, BatchNormGradientsDiffer) {
  SyntheticRegression data(6, 3, 8);
  const Batch batch = data.batch(0, 16);
  const Grads full = accumulated(mlp_maker("batch"), batch, 1);
  // Each micro-batch is normalised with its own mean and variance: not the batch's.
  EXPECT_GT(max_rel_diff(accumulated(mlp_maker("batch"), batch, 4), full), 1e-2);
}

TEST(Accumulation, BatchStatsModeGivesFullBatchRunningStatistics) {
  auto first_bn = [](Model& m) {
    auto& block = static_cast<Sequential&>(*m.blocks()[0]);
    return static_cast<BatchNorm*>(block.layers()[1].get());
  };
  auto run = [&](int64_t micro, int64_t accum, const std::string& bn_stats) {
    auto model = mlp_maker("batch")();
    SyntheticRegression data(6, 3, 9);
    TrainOptions o;
    o.steps = 1;
    o.micro_batch = micro;
    o.accum = accum;
    o.bn_stats = bn_stats;
    Trainer(*model, data, o).step(0);
    BatchNorm* bn = first_bn(*model);
    std::vector<float> stats(bn->running_mean().value.f32(), bn->running_mean().value.f32() + 12);
    stats.insert(stats.end(), bn->running_var().value.f32(), bn->running_var().value.f32() + 12);
    return stats;
  };
  auto rel = [](const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0, n = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      d += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
      n += static_cast<double>(b[i]) * b[i];
    }
    return std::sqrt(d / n);
  };
  const auto full = run(16, 1, "micro");
  EXPECT_LE(rel(run(4, 4, "batch"), full), 1e-6);
  EXPECT_LE(rel(run(2, 8, "batch"), full), 1e-6);
  EXPECT_GT(rel(run(4, 4, "micro"), full), 1e-4);  // per-micro-batch updates do differ
}

TEST(Accumulation, TrainingMatchesFullBatchWithSmallerActivations) {
  auto run = [](int64_t micro, int64_t accum, size_t* activation_peak) {
    MemoryLedger ledger;
    std::vector<double> losses;
    {
      LedgerScope scope(ledger);
      auto model = gpt_maker()();
      RandomTokens data(37, 12, 10);
      TrainOptions o;
      o.steps = 5;
      o.micro_batch = micro;
      o.accum = accum;
      o.lr = 1e-2f;
      Trainer trainer(*model, data, o);
      for (int64_t s = 0; s < 5; ++s) losses.push_back(trainer.step(s).loss);
    }
    *activation_peak = ledger.peak()[MemCategory::Activations];
    return losses;
  };
  size_t full_bytes = 0, accum_bytes = 0;
  const auto full = run(16, 1, &full_bytes);
  const auto acc = run(4, 4, &accum_bytes);
  for (size_t s = 0; s < full.size(); ++s) EXPECT_NEAR(acc[s], full[s], 1e-5 * std::fabs(full[s])) << "step " << s;
  // Activations follow the micro-batch (the whole batch's token ids stay: 2 x 16 x 12 int32).
  EXPECT_GT(static_cast<double>(full_bytes) / static_cast<double>(accum_bytes), 3.5);
}

TEST(Accumulation, ComparingNoGradientsIsAnError) {
  // A model that computed no gradient at all must not pass a "gradients agree" check.
  EXPECT_THROW(max_relative_difference(GradientSnapshot{}, GradientSnapshot{}), Error);
  const GradientSnapshot one{{"w", {1.0, 2.0}}};
  EXPECT_THROW(max_relative_difference(GradientSnapshot{}, one), Error);
  EXPECT_EQ(max_relative_difference(one, one), 0.0);
}
