// Nucleus (top-p) sampling (train/sampling.h): which tokens a given P lets through, after top-k and
// the temperature; ties kept; P = 1 draws exactly as plain sampling; the frequencies of the kept
// tokens are their renormalised probabilities; values outside (0, 1] refused.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "cli_support.h"
#include "core/error.h"
#include "train/generate.h"
#include "train/sampling.h"

namespace frugal {
namespace {

using testing::expect_one_line_error;
using testing::run_frugal;

// Logits whose softmax at temperature 1 is `probs`.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

const std::vector<float> kLogits = logits_of({0.5, 0.3, 0.15, 0.05});

// The tokens drawn over `draws` seeds (step 0) and `draws` steps (seed 0).
std::set<int32_t> drawn(const std::vector<float>& logits, float temperature, int64_t top_k, float top_p,
                        int draws = 2000) {
  std::set<int32_t> seen;
  std::vector<float> probs;
  const int64_t V = static_cast<int64_t>(logits.size());
  for (int i = 0; i < draws; ++i) {
    seen.insert(sample_token(logits.data(), V, temperature, top_k, top_p, static_cast<uint64_t>(i), 0, probs));
    seen.insert(sample_token(logits.data(), V, temperature, top_k, top_p, 0, static_cast<uint64_t>(i), probs));
  }
  return seen;
}

TEST(TopP, KeepsTheSmallestSetReachingP) {
  EXPECT_EQ(drawn(kLogits, 1, 0, 0.45f), (std::set<int32_t>{0}));        // 0.5 >= 0.45
  EXPECT_EQ(drawn(kLogits, 1, 0, 0.55f), (std::set<int32_t>{0, 1}));     // 0.5 < 0.55 <= 0.8
  EXPECT_EQ(drawn(kLogits, 1, 0, 0.9f), (std::set<int32_t>{0, 1, 2}));   // 0.8 < 0.9 <= 0.95
  EXPECT_EQ(drawn(kLogits, 1, 0, 0.97f), (std::set<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(drawn(kLogits, 1, 0, 1e-6f), (std::set<int32_t>{0}));        // the most likely token alone
}

TEST(TopP, AppliesAfterTopKAndTemperature) {
  // top-k 2 renormalises to {0.625, 0.375}: P = 0.6 keeps token 0 alone (0.5 would not reach it).
  EXPECT_EQ(drawn(kLogits, 1, 2, 0.6f), (std::set<int32_t>{0}));
  EXPECT_EQ(drawn(kLogits, 1, 0, 0.6f), (std::set<int32_t>{0, 1}));
  EXPECT_EQ(drawn(kLogits, 1, 2, 0.99f), (std::set<int32_t>{0, 1}));  // never past top-k's two
  // Temperature 2 flattens to {0.379, 0.294, 0.208, 0.120}: P = 0.45 needs two tokens.
  EXPECT_EQ(drawn(kLogits, 2, 0, 0.45f), (std::set<int32_t>{0, 1}));
  EXPECT_EQ(drawn(kLogits, 0.5f, 0, 0.6f), (std::set<int32_t>{0}));  // sharpened: {0.68, 0.24, ...}
}

TEST(TopP, TiesWithTheLastTokenTakenStay) {
  const std::vector<float> tied = {1, 0, 1, 1};  // three equal tokens of 0.29 each, one of 0.11
  EXPECT_EQ(drawn(tied, 1, 0, 0.1f), (std::set<int32_t>{0, 2, 3}));
  EXPECT_EQ(drawn(tied, 1, 0, 0.95f), (std::set<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(drawn(tied, 1, 1, 1.0f), (std::set<int32_t>{0, 2, 3}));  // as top-k keeps ties with the k-th
}

TEST(TopP, OneDrawsAsPlainSamplingDrawForDraw) {
  std::vector<float> logits(1000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(std::sin(0.37 * i) * 4);
  std::vector<float> probs;
  int differ_from_greedy = 0;
  for (uint64_t step = 0; step < 500; ++step) {
    const int32_t plain = sample_token(logits.data(), 1000, 0.8f, 0, 1.0f, 7, step, probs);
    // A nucleus holding every token (the 4-token distribution at P = 0.99) changes no draw either.
    EXPECT_EQ(sample_token(kLogits.data(), 4, 1, 0, 0.99f, 7, step, probs),
              sample_token(kLogits.data(), 4, 1, 0, 1.0f, 7, step, probs));
    EXPECT_EQ(plain, sample_token(logits.data(), 1000, 0.8f, 0, 1.0f, 7, step, probs)) << "deterministic";
    differ_from_greedy += plain != sample_token(logits.data(), 1000, 0, 0, 1.0f, 7, step, probs);
  }
  EXPECT_GT(differ_from_greedy, 100) << "the plain draws are random, not greedy";
  // With top-k the same: P = 1 adds nothing to it.
  for (uint64_t seed = 0; seed < 200; ++seed)
    EXPECT_EQ(sample_token(kLogits.data(), 4, 1, 3, 0.99f, seed, 3, probs),
              sample_token(kLogits.data(), 4, 1, 3, 1.0f, seed, 3, probs));
}

// 20,000 draws at P = 0.9: tokens 0..2 with 0.5, 0.3, 0.15 renormalised over 0.95, each count within
// 5 standard deviations of its binomial mean (a false failure about once in 1.7 million runs; the
// draws are fixed by the seeds anyway), and token 3 never.
TEST(TopP, FrequenciesAreTheRenormalisedProbabilities) {
  constexpr int kDraws = 20000;
  std::vector<int> counts(4, 0);
  std::vector<float> probs;
  for (int i = 0; i < kDraws; ++i) ++counts[sample_token(kLogits.data(), 4, 1, 0, 0.9f, 3, static_cast<uint64_t>(i), probs)];
  const double expected[] = {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0};
  for (int v = 0; v < 4; ++v) {
    const double mean = kDraws * expected[v];
    const double sd = std::sqrt(kDraws * expected[v] * (1 - expected[v]));
    EXPECT_LE(std::fabs(counts[v] - mean), 5 * sd + 1e-9) << "token " << v << ": " << counts[v] << " of " << kDraws;
  }
  EXPECT_EQ(counts[3], 0);
}

TEST(TopP, ValuesOutsideZeroToOneAreRefused) {
  for (float bad : {0.0f, -0.5f, 1.5f, std::numeric_limits<float>::quiet_NaN()}) {
    SampleOptions options;
    options.top_p = bad;
    EXPECT_THROW(check_sample_options(options), Error) << bad;
  }
  SampleOptions fine;
  fine.top_p = 1e-3f;
  EXPECT_NO_THROW(check_sample_options(fine));
  // Refused before any model is read (the directory need not exist).
  expect_one_line_error(run_frugal("generate --model nowhere --top-p 0"), "--top-p must be in (0, 1]");
  expect_one_line_error(run_frugal("generate --model nowhere --top-p 1.5"), "got 1.5");
  expect_one_line_error(run_frugal("chat --model nowhere --top-p -1"), "--top-p");
}

}  // namespace
}  // namespace frugal
