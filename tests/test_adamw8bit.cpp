// 8-bit AdamW (train/adamw8bit.h) and its dynamic code (kernels/quantize8.h): the levels against the
// paper's construction written out here, the fast quantiser against a plain nearest-level scan, the
// block-wise error within the bound the code implies, the update against AdamW's, and its memory:
// state bytes by arithmetic, planned = measured, at most 0.27x AdamW's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "fixtures.h"
#include "kernels/quantize8.h"
#include "models/gpt.h"
#include "tolerances.h"
#include "train/adamw8bit.h"
#include "train/planner.h"
#include "train/trainer.h"

using namespace frugal;

namespace {
// The code's magnitudes in double, from the paper's description: decade 10^-E holds 2^F levels
// 10^-E (0.1 + 0.9 (k + 1) / 2^F), F = bits - 1 - E; and 0.
std::vector<double> published_magnitudes(int magnitude_bits) {
  std::vector<double> out{0.0};
  for (int e = magnitude_bits - 1; e >= 0; --e) {
    const int levels = 1 << (magnitude_bits - 1 - e);
    for (int k = 0; k < levels; ++k) out.push_back(std::pow(10.0, -e) * (0.1 + 0.9 * (k + 1) / levels));
  }
  return out;
}

// The plain implementation: the level nearest to x, by scanning all 256 bytes.
double nearest_level_distance(const DynamicCode8& code, double x) {
  double best = INFINITY;
  for (int q = 0; q < 256; ++q) best = std::min(best, std::fabs(x - code.value(static_cast<uint8_t>(q))));
  return best;
}

std::vector<float> probe_values(bool is_signed) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> exponent(-9.0, 0.0), unit(0.0, 1.0);
  std::vector<float> xs;
  for (int i = 0; i < 20000; ++i) {
    const float magnitude = static_cast<float>(std::pow(10.0, exponent(rng)));
    xs.push_back(is_signed && unit(rng) < 0.5 ? -magnitude : magnitude);
  }
  const DynamicCode8& code = is_signed ? signed_code8() : unsigned_code8();
  const auto& m = code.magnitudes();
  for (size_t i = 0; i + 1 < m.size(); ++i) {  // every level, every midpoint and its neighbours
    const float mid = 0.5f * (m[i] + m[i + 1]);
    for (float x : {m[i], mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 2.0f)}) xs.push_back(x);
  }
  xs.push_back(1.0f);
  return xs;
}
}  // namespace

TEST(DynamicCode8, LevelsAreThePublishedDynamicCode) {
  for (bool is_signed : {true, false}) {
    const std::vector<double> want = published_magnitudes(is_signed ? 7 : 8);
    const std::vector<float>& got = (is_signed ? signed_code8() : unsigned_code8()).magnitudes();
    ASSERT_EQ(got.size(), want.size());
    ASSERT_EQ(got.size(), is_signed ? 128u : 256u);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], static_cast<float>(want[i])) << i;
    EXPECT_EQ(got.back(), 1.0f);  // a block's absmax is exact
  }
  // Signed: each magnitude with either sign; byte 128 is -0.
  for (int q = 1; q < 128; ++q) EXPECT_EQ(signed_code8().value(static_cast<uint8_t>(128 | q)), -signed_code8().value(static_cast<uint8_t>(q)));
}

TEST(DynamicCode8, QuantiseFindsTheNearestLevel) {
  for (bool is_signed : {true, false}) {
    const DynamicCode8& code = is_signed ? signed_code8() : unsigned_code8();
    for (float x : probe_values(is_signed)) {
      const double got = std::fabs(static_cast<double>(x) - code.value(code.quantize(x)));
      // Within one float ulp of the nearest: the quantiser decides at midpoints rounded to float, at
      // most half an ulp from the true ones, so a value between the two is at most twice that (one
      // ulp) farther from the level it gets than from the nearest.
      ASSERT_LE(got, nearest_level_distance(code, x) + std::nextafter(std::fabs(x), 2.0f) - std::fabs(x))
          << (is_signed ? "signed " : "unsigned ") << x;
    }
  }
  EXPECT_EQ(unsigned_code8().quantize(-0.5f), 0);  // the unsigned code clamps negatives to 0
  EXPECT_EQ(signed_code8().value(signed_code8().quantize(-1.0f)), -1.0f);
}

// The array forms (vector lanes, 8-bit AdamW's loops) give exactly the scalar forms' bytes and values:
// the probe values (every level, every midpoint and its neighbours), negatives, 0, beyond 1 and NaN.
TEST(DynamicCode8, ArrayFormsEqualTheScalarForms) {
  for (bool is_signed : {true, false}) {
    const DynamicCode8& code = is_signed ? signed_code8() : unsigned_code8();
    std::vector<float> x = probe_values(is_signed);
    for (float extra : {0.0f, -0.0f, 1.5f, -1.5f, -0.25f, 1e-30f, -1e-30f, std::numeric_limits<float>::quiet_NaN()})
      x.push_back(extra);  // (NaN: the largest magnitude, signed; 0, unsigned: never past the table)
    const float scale = 0.75f;  // exact: x * scale is the value each form quantises
    std::vector<uint8_t> q(x.size());
    code.quantize_scaled(x.data(), scale, static_cast<int64_t>(x.size()), q.data());
    std::vector<float> back(x.size());
    code.dequantize_scaled(q.data(), 3.0f, static_cast<int64_t>(q.size()), back.data());
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(q[i], code.quantize(x[i] * scale)) << (is_signed ? "signed " : "unsigned ") << x[i];
      ASSERT_EQ(back[i], code.value(q[i]) * 3.0f);
    }
  }
}

// Block-wise round trip: each value's error is at most half the gap between the two levels around
// it, times its block's absmax, plus the float arithmetic (below); the largest magnitude of a block
// comes back exactly.
TEST(DynamicCode8, BlockwiseErrorWithinTheCodesBound) {
  for (bool is_signed : {true, false}) {
    const DynamicCode8& code = is_signed ? signed_code8() : unsigned_code8();
    std::mt19937 rng(9);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t n = 5000, block = 256;  // the last block partial
    std::vector<float> x(n), back(n), absmax((n + block - 1) / block);
    for (float& v : x) v = is_signed ? normal(rng) * 1e-3f : std::pow(normal(rng) * 1e-3f, 2.0f);
    std::vector<uint8_t> q(n);
    quantize_blockwise(code, x.data(), n, block, q.data(), absmax.data());
    dequantize_blockwise(code, q.data(), absmax.data(), n, block, back.data());
    const auto& m = code.magnitudes();
    for (int64_t i = 0; i < n; ++i) {
      const float scale = absmax[i / block], r = std::fabs(x[i]) / scale;
      const size_t above = std::lower_bound(m.begin(), m.end(), r) - m.begin();
      const double gap = above == 0 ? 0.0 : m[std::min(above, m.size() - 1)] - m[above - 1];
      // The quantiser sees r = x (1 / absmax), two roundings (2 u of r), and decides at float
      // midpoints (u of r); the level times absmax rounds once (u of it, <= r + gap); the test's
      // float subtraction (u of the difference). To first order:
      const double u = frugal::testing::kFp32Unit;
      ASSERT_LE(std::fabs(back[i] - x[i]), (0.5 * gap + u * (4 * r + gap)) * scale) << i;
      if (std::fabs(x[i]) == scale) {
        EXPECT_EQ(back[i], x[i]) << i;
      }
    }
  }
}

// With zero state the first step is AdamW's exactly; later steps stay close (the moments carry the
// code's rounding): within what the code's quantisation errors explain.
//
// The model. Between steps the moments are stored in the 8-bit codes, each value off by an error Q,
// |Q| <= h (half the gap around it, times its block's absmax). An error left in m after step k reaches
// every later step t through m's recursion, b1^(t-k) Q, and moves that step's update by
// d update / d m = lr / (bias1_t (sqrt(vhat_t) + eps)) times it; in v likewise b2^(t-k) Q times
// lr |mhat_t| / (2 bias2_t sqrt(vhat_t) (sqrt(vhat_t) + eps)^2). So each weight's drift is, to first
// order, a sum of the errors times coefficients c (weight decay only shrinks it). Rounding to the
// nearest level at positions that move every step, the errors are taken as independent with mean
// zero: then E|drift_i| <= sd_i = sqrt(sum c^2 h^2) (any distribution on [-h, h]), and the sum over
// the weights has expectation <= sum_i sd_i and standard deviation <= sqrt(sum_i sd_i^2). The bound
// is 5 of those above the expectation's. (fp32 rounding, ~1e-7 of the update, is far below.)
TEST(AdamW8bit, FollowsAdamW) {
  const int64_t n = 3000;
  auto make = [&](const std::string& name) {
    Param p{name, Tensor::empty({30, 100}, DType::F32, MemCategory::Params), {}, true};
    p.ensure_grad();
    for (int64_t i = 0; i < n; ++i) p.value.f32()[i] = std::sin(0.1f * static_cast<float>(i));
    return p;
  };
  Param a = make("w"), b = make("w");
  AdamWOptions o;
  o.weight_decay = 0.1f;
  AdamW full(o);
  AdamW8bit eight(o);
  std::vector<Param*> pa{&a}, pb{&b};
  const int steps = 50;
  const double lr = 1e-3, b1 = o.beta1, b2 = o.beta2, eps = o.eps;
  // The model's inputs per step (index t for step t + 1), from AdamW's moments in double: the half
  // gaps h of m and v, and the two derivatives of the update.
  const auto half_gap = [](const std::vector<float>& levels, double r) {  // r in [0, 1]
    const auto above = static_cast<size_t>(std::lower_bound(levels.begin(), levels.end(), r) - levels.begin());
    return above == 0 || above == levels.size() ? 0.0 : 0.5 * (double{levels[above]} - levels[above - 1]);
  };
  std::vector<double> m(n, 0.0), v(n, 0.0);
  std::vector<std::vector<double>> hm(steps, std::vector<double>(n)), hv = hm, dm = hm, dv = hm;
  for (int t = 0; t < steps; ++t) {
    for (int64_t i = 0; i < n; ++i)  // gradients of magnitudes 1e-3 .. 7e-3, changing sign
      a.grad.f32()[i] = b.grad.f32()[i] =
          std::cos(0.37f * static_cast<float>(i * (t + 1))) * (1.0f + static_cast<float>(i % 7)) * 1e-3f;
    full.step(pa, 1e-3f);
    eight.step(pb, 1e-3f);
    if (t == 0) {
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(a.value.f32()[i], b.value.f32()[i]) << i;
    }
    const double bias1 = 1 - std::pow(b1, t + 1), bias2 = 1 - std::pow(b2, t + 1);
    for (int64_t i = 0; i < n; ++i) {
      const double g = a.grad.f32()[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double root = std::sqrt(v[i] / bias2);
      dm[t][i] = lr / (bias1 * (root + eps));
      dv[t][i] = lr * std::fabs(m[i] / bias1) / (2 * bias2 * root * (root + eps) * (root + eps));
    }
    for (int64_t begin = 0; begin < n; begin += kAdamW8bitBlock) {
      const int64_t end = std::min(n, begin + kAdamW8bitBlock);
      double m_top = 0, v_top = 0;
      for (int64_t i = begin; i < end; ++i) {
        m_top = std::max(m_top, std::fabs(m[i]));
        v_top = std::max(v_top, v[i]);
      }
      for (int64_t i = begin; i < end; ++i) {
        hm[t][i] = m_top * half_gap(signed_code8().magnitudes(), std::fabs(m[i]) / m_top);
        hv[t][i] = v_top * half_gap(unsigned_code8().magnitudes(), v[i] / v_top);
      }
    }
  }
  double expected = 0, variance = 0;
  for (int64_t i = 0; i < n; ++i) {
    // c for the error stored after step k: b sum_{t > k} b^(t - k - 1) d_t, summed from the last step back.
    double sm = 0, sv = 0, var = 0;
    for (int k = steps - 1; k >= 1; --k) {
      sm = dm[k][i] + b1 * sm;
      sv = dv[k][i] + b2 * sv;
      var += std::pow(b1 * sm * hm[k - 1][i], 2) + std::pow(b2 * sv * hv[k - 1][i], 2);
    }
    expected += std::sqrt(var);
    variance += var;
  }
  double moved = 0, differ = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double start = std::sin(0.1 * static_cast<double>(i));
    moved += std::fabs(a.value.f32()[i] - start);
    differ += std::fabs(a.value.f32()[i] - b.value.f32()[i]);
  }
  EXPECT_LT(differ, expected + 5 * std::sqrt(variance))
      << "8-bit updates drift from AdamW's: " << differ / moved << " of the distance moved";
}

// State: one byte per number and moment plus one fp32 absmax per block of 256 and moment; the plan
// predicts exactly what a run holds, and that is at most 0.27x AdamW's 8 bytes per number.
TEST(AdamW8bit, StateBytesPlannedEqualMeasuredAndAQuarterOfAdamW) {
  GptConfig c = frugal::testing::tiny_gpt_config();
  TrainOptions options;
  options.steps = 2;
  options.micro_batch = 2;
  options.optimizer = "adamw8bit";
  MemoryLedger ledger;
  int64_t expected = 0;
  {
    LedgerScope scope(ledger);
    Gpt model(c);
    model.init_weights(1);
    for (Param* p : model.params())
      expected += 2 * p->value.numel() + 2 * 4 * ((p->value.numel() + kAdamW8bitBlock - 1) / kAdamW8bitBlock);
    RandomTokens data(c.vocab_size, c.n_positions, 1);
    Trainer trainer(model, data, options);
    trainer.step(0);
    trainer.step(1);
  }
  EXPECT_EQ(ledger.peak()[MemCategory::Optimizer], static_cast<size_t>(expected));
  auto make = [&] { return std::unique_ptr<Model>(std::make_unique<Gpt>(c)); };
  const MemoryPlan plan = plan_training_memory(make, options);
  EXPECT_EQ(plan.peak.bytes, ledger.peak().bytes);
  options.optimizer = "adamw";
  c = frugal::testing::reference_workload_gpt();
  auto reference = [&] { return std::unique_ptr<Model>(std::make_unique<Gpt>(c)); };
  const size_t adamw = plan_training_memory(reference, options).peak[MemCategory::Optimizer];
  options.optimizer = "adamw8bit";
  const size_t eight = plan_training_memory(reference, options).peak[MemCategory::Optimizer];
  // Byte arithmetic, no rounding: (2 + 2 x 4 / 256) / 8 = 0.254 per number, a partial block adding at
  // most 8 bytes per tensor; 0.27 is the documented claim.
  EXPECT_LE(static_cast<double>(eight), 0.27 * static_cast<double>(adamw));
}
