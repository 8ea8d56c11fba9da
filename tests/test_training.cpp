// Models learn what they should: the MLP fits the synthetic regression, the linear model fits its
// linear part, the GPT's loss on the fortunes text falls clearly below the uniform guess ln(256).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "fixtures.h"
#include "io/text_corpus.h"
#include "models/gpt.h"
#include "models/mlp.h"
#include "train/trainer.h"

using namespace frugal;

namespace {
TrainOptions options(int64_t steps, int64_t micro_batch, float lr, int64_t warmup = 0) {
  TrainOptions o;
  o.steps = steps;
  o.micro_batch = micro_batch;
  o.lr = lr;
  o.warmup = warmup;
  return o;
}

std::vector<double> train_losses(Model& model, DataSource& data, TrainOptions options) {
  Trainer trainer(model, data, options);
  std::vector<double> losses;
  for (int64_t s = 0; s < options.steps; ++s) losses.push_back(trainer.step(s).loss);
  return losses;
}

double mean_of_last(const std::vector<double>& v, size_t n) {
  double s = 0;
  for (size_t i = v.size() - n; i < v.size(); ++i) s += v[i];
  return s / static_cast<double>(n);
}
}  // namespace

TEST(Training, MlpLearnsSyntheticRegression) {
  MlpConfig c;  // 32 -> 64 -> 64 -> 8
  Mlp model(c);
  model.init_weights(3);
  SyntheticRegression data(c.in_features, c.out_features, 3);
  const TrainOptions o = options(300, 32, 3e-3f);
  const auto losses = train_losses(model, data, o);
  // The targets have unit-scale variance; a fitted model explains most of it.
  EXPECT_LT(mean_of_last(losses, 20), 0.2 * losses.front());
}

TEST(Training, LinearModelFitsLinearPartOnly) {
  LinearRegression model(32, 8);
  model.init_weights(4);
  SyntheticRegression data(32, 8, 4);
  const TrainOptions o = options(300, 32, 1e-2f);
  const auto losses = train_losses(model, data, o);
  EXPECT_LT(mean_of_last(losses, 20), 0.5 * losses.front());
}

TEST(Training, GptLossOnFortunesFallsBelowUniformGuess) {
  if (!std::filesystem::exists(kFortunesDir)) GTEST_SKIP() << "Debian package fortunes not installed";
  GptConfig c = frugal::testing::tiny_gpt_config();
  c.n_embd = 64;
  c.n_positions = 32;
  c.vocab_size = 256;  // bytes
  Gpt model(c);
  model.init_weights(5);
  TokenWindows data(load_fortunes_corpus(), 32, 5, "fortunes");
  const TrainOptions o = options(80, 16, 3e-3f, 10);
  const auto losses = train_losses(model, data, o);
  EXPECT_NEAR(losses.front(), std::log(256.0), 0.3);  // a fresh model guesses uniformly
  EXPECT_LT(mean_of_last(losses, 10), 3.3);           // well below ln(256) = 5.545
}

TEST(Training, RunsAreDeterministic) {
  auto run = [] {
    GptConfig c = frugal::testing::tiny_gpt_config();
    c.n_layer = 1;
    c.vocab_size = 32;
    Gpt model(c);
    model.init_weights(6);
    RandomTokens data(32, 8, 6);
    const TrainOptions o = options(4, 4, TrainOptions{}.lr);
    return train_losses(model, data, o);
  };
  EXPECT_EQ(run(), run());
}
