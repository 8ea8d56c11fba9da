// Gradient accumulation is the full-batch gradient: for GPT (including a ragged batch whose
// micro-batches hold different numbers of counted tokens), the linear model and an MLP without
// BatchNorm. The naive normalisation fails on the ragged batch; BatchNorm's gradients do differ;
// --bn-stats batch gives the full batch's running statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "core/error.h"
#include "fixtures.h"
#include "gradcheck.h"
#include "kernels/cross_entropy.h"
#include "models/gpt.h"
#include "models/mlp.h"
#include "nn/batchnorm.h"
#include "nn/linear.h"
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

GptConfig gpt_config() {
  GptConfig c = tiny_gpt_config();
  c.n_positions = 12;
  c.vocab_size = 37;
  return c;
}

ModelMaker gpt_maker() { return model_maker<Gpt>(gpt_config(), 11); }

// Every tensor of `a` within the bound of two summation orders of the batch gradient (gradcheck.h):
// 2 gamma_n ||sum_s |g_s| || / ||g||, n the terms on the longest path, the magnitudes from `batch`.
void expect_same_sum(const Grads& a, const Grads& b, const Grads& magnitude, double n, const std::string& what) {
  const SumOrderCheck c = against_sum_order_bound(a, b, magnitude, n);
  EXPECT_LE(c.difference, c.bound) << what << ": " << c.name;
}

// The MLP's n: forward K = 6, 12, 12 (+ the bias), backward dx K = 3, 12, and the 16 rows summed.
constexpr double kMlpTerms = (7 + 13 + 13) + (3 + 12) + 16;

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
  const Grads magnitude = per_sample_magnitudes(gpt_maker(), batch);
  const double n = gpt_reduction_terms(gpt_config(), 8 * 12);
  for (int64_t k : {2, 4, 8}) expect_same_sum(accumulated(gpt_maker(), batch, k), full, magnitude, n, "K=" + std::to_string(k));
}

TEST(Accumulation, NaiveNormalisationFailsOnTheRaggedBatch) {
  const Batch batch = ragged_gpt_batch(1);  // micro-batches of 2 count 23, 19, 15 and 11 tokens
  const Grads full = accumulated(gpt_maker(), batch, 1);
  const double n = gpt_reduction_terms(gpt_config(), 8 * 12);
  const Grads magnitude = per_sample_magnitudes(gpt_maker(), batch);
  for (int64_t k : {2, 4}) expect_same_sum(accumulated(gpt_maker(), batch, k), full, magnitude, n, "K=" + std::to_string(k));
  // The naive weights, N / (K n_k) = 68 / (4 x 23, 19, 15, 11) = 0.74 .. 1.55 per micro-batch, are 10%
  // to 55% off 1: a difference of that order, far above the rounding bound (about 1e-4 here).
  EXPECT_GT(max_rel_diff(naive(gpt_maker(), batch, 4), full), 1e-2);
  // On a batch without padding the two agree: the test can tell the difference only through raggedness.
  // (Dividing by n_k and then by K rounds twice where 1 / N rounds once: 2 more terms.)
  RandomTokens data(37, 12, 5);
  const Batch even = data.batch(0, 8);
  expect_same_sum(naive(gpt_maker(), even, 4), accumulated(gpt_maker(), even, 1), per_sample_magnitudes(gpt_maker(), even),
                  n + 2, "even batch");
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
  const Grads magnitude = per_sample_magnitudes(make, batch);
  // n: forward K = 5 (+ the bias), the loss's 3 outputs, the 16 rows summed.
  for (int64_t k : {2, 4, 16}) expect_same_sum(accumulated(make, batch, k), full, magnitude, 6 + 3 + 16, "K=" + std::to_string(k));
}

TEST(Accumulation, MlpWithoutBatchNormEqualsFullBatch) {
  SyntheticRegression data(6, 3, 7);
  const Batch batch = data.batch(0, 16);
  for (const std::string norm : {"none", "layer", "group"}) {
    const Grads full = accumulated(mlp_maker(norm), batch, 1);
    const Grads magnitude = per_sample_magnitudes(mlp_maker(norm), batch);
    for (int64_t k : {2, 4, 16})
      expect_same_sum(accumulated(mlp_maker(norm), batch, k), full, magnitude, kMlpTerms, norm + " K=" + std::to_string(k));
  }
}

TEST(Accumulation, BatchNormGradientsDiffer) {
  SyntheticRegression data(6, 3, 8);
  const Batch batch = data.batch(0, 16);
  const Grads full = accumulated(mlp_maker("batch"), batch, 1);
  // Each micro-batch is normalised with its own mean and variance: not the batch's. Statistics of 4
  // samples instead of 16 are off by O(1 / sqrt(4)) of a standard deviation: a difference of that
  // order, far above the rounding bound of the test above (about 1e-5).
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
  // The bound (gradcheck.h's running_statistics_bound): the first Linear's outputs over fewer rows,
  // carried into the statistics by the momentum, and each statistic's own rounding.
  const auto model = mlp_maker("batch")();
  auto& first = static_cast<Linear&>(*static_cast<Sequential&>(*model->blocks()[0]).layers()[0]);
  const double bound = running_statistics_bound(first, SyntheticRegression(6, 3, 9).batch(0, 16).inputs, full);
  EXPECT_LE(rel(run(4, 4, "batch"), full), bound);
  EXPECT_LE(rel(run(2, 8, "batch"), full), bound);
  // Per-micro-batch updates do differ: 4 momentum updates with statistics of 4 samples instead of one
  // with 16 move the running mean and variance by O(0.1 x their sampling error): far above the bound.
  EXPECT_GT(rel(run(4, 4, "micro"), full), 1e-4);
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
  // Each step's loss is the same forward sum of positive per-token terms, in two orders (2 gamma_n of
  // it, n the terms of gpt_reduction_terms); the weights it is taken at differ by what the earlier
  // steps' gradients (within that bound of each other, per GptRaggedBatchEqualsFullBatch) moved them,
  // which, to first order, adds one such bound per step.
  const double n = gpt_reduction_terms(gpt_config(), 16 * 12);
  for (size_t s = 0; s < full.size(); ++s)
    EXPECT_NEAR(acc[s], full[s], static_cast<double>(s + 1) * 2 * gamma_n(n) * std::fabs(full[s])) << "step " << s;
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
