// The first pieces of the Llama architecture (issue 20): rotary position embeddings in Hugging
// Face's rotate_half layout. (RMSNorm's finite-difference, measure-mode and half-storage checks are
// rows of tests/test_layers.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "fixtures.h"
#include "kernels/rope.h"

using namespace frugal;

using frugal::testing::normal_values;

// Against the formula written out in double precision, as transformers' apply_rotary_pos_emb does
// it: q * cos + rotate_half(q) * sin with cos, sin of [angles, angles].
TEST(Rope, MatchesRotateHalfWrittenOut) {
  const int64_t B = 2, T = 5, H = 3, d = 8, first = 7;
  const double theta = 10000.0;
  std::vector<float> x = normal_values(B * T * H * d, 1);
  const std::vector<float> original = x;
  rope_apply(x.data(), B, T, H, d, first, rope_inverse_frequencies(d, theta));
  for (int64_t row = 0; row < B * T * H; ++row) {
    const int64_t t = (row / H) % T;
    const float* q = original.data() + row * d;
    for (int64_t j = 0; j < d; ++j) {
      const int64_t i = j % (d / 2);
      const double angle = static_cast<double>(first + t) * std::pow(theta, -2.0 * i / d);
      const double rotated_half = j < d / 2 ? -q[j + d / 2] : q[j - d / 2];
      const double expected = q[j] * std::cos(angle) + rotated_half * std::sin(angle);
      EXPECT_NEAR(x[static_cast<size_t>(row * d + j)], expected, 2e-5 * (1 + std::fabs(expected))) << row << " " << j;
    }
  }
}

// The property attention relies on: the score of a rotated query at position m and a rotated key at
// position n depends on m - n only; and the inverse undoes the rotation (the backward pass).
TEST(Rope, ScoresDependOnTheDistanceOnlyAndTheInverseUndoesIt) {
  const int64_t d = 16;
  const std::vector<float> freq = rope_inverse_frequencies(d, 500000.0);
  const std::vector<float> q0 = normal_values(d, 2), k0 = normal_values(d, 3);
  const auto score = [&](int64_t m, int64_t n) {
    std::vector<float> q = q0, k = k0;
    rope_apply(q.data(), 1, 1, 1, d, m, freq);
    rope_apply(k.data(), 1, 1, 1, d, n, freq);
    double s = 0;
    for (int64_t i = 0; i < d; ++i) s += static_cast<double>(q[static_cast<size_t>(i)]) * k[static_cast<size_t>(i)];
    return s;
  };
  EXPECT_NEAR(score(3, 1), score(12, 10), 1e-4);
  EXPECT_NEAR(score(40, 40), score(0, 0), 1e-4);
  EXPECT_GT(std::fabs(score(3, 1) - score(3, 2)), 1e-3) << "different distances give different scores";
  std::vector<float> x = normal_values(2 * 4 * 2 * d, 4);
  const std::vector<float> original = x;
  rope_apply(x.data(), 2, 4, 2, d, 100, freq);
  rope_apply(x.data(), 2, 4, 2, d, 100, freq, /*inverse=*/true);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], original[i], 1e-5) << i;
  EXPECT_THROW(rope_inverse_frequencies(7, 10000.0), Error);
}
