// The first pieces of the Llama architecture (issue 20): rotary position embeddings in Hugging
// Face's rotate_half layout. (RMSNorm's finite-difference, measure-mode and half-storage checks are
// rows of tests/test_layers.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "fixtures.h"
#include "kernels/rope.h"
#include "tolerances.h"

using namespace frugal;

using frugal::testing::gamma_n;
using frugal::testing::kFp32Unit;
using frugal::testing::normal_values;

namespace {
// The error model of one rotation in fp32, of a pair (a, b) by the angle p f at position p: the
// kernel's angle, fl(p fl(f)), is within 2u of p f (p exact); glibc's cosf and sinf are within 1 ulp
// (2u of the value) of the cosine and sine of that; a cos -+ b sin rounds twice (gamma_2 of its
// terms' magnitudes; FMA or not). So each output is within (|a| + |b|) (2u p f + 2u + gamma_2).
double rotation_bound(double a, double b, double angle) {
  return (std::fabs(a) + std::fabs(b)) * (2 * kFp32Unit * std::fabs(angle) + 2 * kFp32Unit + gamma_n(2));
}
}  // namespace

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
      // rotation_bound (the reference's double error, 2^-53 of the angle, is far below)
      const double bound = rotation_bound(q[j], rotated_half, angle);
      EXPECT_NEAR(x[static_cast<size_t>(row * d + j)], expected, bound) << row << " " << j;
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
  // How far a score may be from the exact one (a function of m - n alone): each rotated component
  // within rotation_bound of its pair's magnitudes |a| + |b| (which bound the rotated component too),
  // so q.k within sum_j (|k_j| + |k_j'|) e_q,j + (|q_j| + |q_j'|) e_k,j (j' the partner; the double
  // dot's own error is far below).
  const auto score_error = [&](int64_t m, int64_t n) {
    double e = 0;
    for (int64_t j = 0; j < d; ++j) {
      const size_t i = static_cast<size_t>(j), partner = static_cast<size_t>((j + d / 2) % d);
      const double f = freq[static_cast<size_t>(j % (d / 2))];
      const double q_pair = std::fabs(q0[i]) + std::fabs(q0[partner]), k_pair = std::fabs(k0[i]) + std::fabs(k0[partner]);
      e += k_pair * rotation_bound(q0[i], q0[partner], static_cast<double>(m) * f) +
           q_pair * rotation_bound(k0[i], k0[partner], static_cast<double>(n) * f);
    }
    return e;
  };
  EXPECT_NEAR(score(3, 1), score(12, 10), score_error(3, 1) + score_error(12, 10));
  EXPECT_NEAR(score(40, 40), score(0, 0), score_error(40, 40) + score_error(0, 0));
  // Distances 2 and 1: the first pair rotated 1 radian further, an O(|q||k|) change of the exact
  // score (1.9 here), far above 1e-3, itself 20x the two scores' rounding bound (score_error: 5e-5).
  EXPECT_GT(std::fabs(score(3, 1) - score(3, 2)), 1e-3) << "different distances give different scores";
  std::vector<float> x = normal_values(2 * 4 * 2 * d, 4);
  const std::vector<float> original = x;
  rope_apply(x.data(), 2, 4, 2, d, 100, freq);
  rope_apply(x.data(), 2, 4, 2, d, 100, freq, /*inverse=*/true);
  // The inverse rotates by the same float cos c and sin s (the angle's own error cancels): exactly,
  // (c^2 + s^2) a, with c^2 + s^2 within 4u of 1 (cosf and sinf within 1 ulp); each of the two
  // passes' outputs rounds twice, gamma_2 of at most |a| + |b| each, the first pass's carried through
  // (|c|, |s| <= 1): within (4u + 4 gamma_2) (|a| + |b|).
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t head = i / d * d, partner = head + (i - head + d / 2) % d;
    const double bound = (4 * kFp32Unit + 4 * gamma_n(2)) * (std::fabs(original[i]) + std::fabs(original[partner]));
    EXPECT_NEAR(x[i], original[i], bound) << i;
  }
  EXPECT_THROW(rope_inverse_frequencies(7, 10000.0), Error);
}
