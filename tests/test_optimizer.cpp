// Optimizers, clipping and the schedule against their formulas, computed here in double.
#include <gtest/gtest.h>

#include <cmath>

#include "tolerances.h"
#include "train/optimizer.h"

using namespace frugal;
using frugal::testing::gamma_n;
using frugal::testing::kFp32Unit;

namespace {
Param make_param(const std::string& name, Shape shape, std::vector<float> value, std::vector<float> grad) {
  Param p{name, Tensor::empty(shape, DType::F32, MemCategory::Params), {}, true};
  std::copy(value.begin(), value.end(), p.value.f32());
  p.ensure_grad();
  std::copy(grad.begin(), grad.end(), p.grad.f32());
  return p;
}
}  // namespace

TEST(Optimizer, AdamWFollowsDecoupledUpdate) {
  Param w = make_param("w", {1, 2}, {0.5f, -1.0f}, {0.1f, -0.3f});
  Param b = make_param("b", {2}, {0.2f, 0.0f}, {1.0f, 2.0f});  // 1-D: no weight decay
  AdamWOptions o;
  o.weight_decay = 0.1f;
  AdamW opt(o);
  std::vector<Param*> params{&w, &b};
  double ref_w[2] = {0.5, -1.0}, ref_b[2] = {0.2, 0.0}, m[4] = {}, v[4] = {};
  // The fp32 update's worst-case error per element, accumulated beside the reference (first order;
  // FMA only removes roundings). The gradient is constant, so the bias-corrected moments are g and g^2
  // exactly whatever beta1 and beta2 (their floats 0.9f and 0.999f included; 1 - beta is exact):
  // r = mhat / (sqrt(vhat) + eps) differs only by the code's roundings, at step t m's 2t - 1, mhat's 2
  // (bias1's float, the division), v's 2t, vhat's 2, the square root's (half of vhat's, and 1), eps's
  // addition and the division: (3t + 5) u of |r|. Then decay w (0.1f's rounding, the product: 2 u of
  // it, plus decay times w's own error), the sum (u), lr (0.01f's rounding, the product: 2 u) and the
  // subtraction (u of the new |w|).
  double bound[4] = {};
  const double lr = 0.01;
  for (int t = 1; t <= 3; ++t) {
    opt.step(params, static_cast<float>(lr));
    for (int i = 0; i < 4; ++i) {
      double& p = i < 2 ? ref_w[i] : ref_b[i - 2];
      const double g = i < 2 ? w.grad.f32()[i] : b.grad.f32()[i - 2];
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      const double mhat = m[i] / (1 - std::pow(0.9, t)), vhat = v[i] / (1 - std::pow(0.999, t));
      const double decay = i < 2 ? 0.1 : 0.0;
      const double r = mhat / (std::sqrt(vhat) + 1e-8);
      bound[i] = bound[i] * (1 + lr * decay) +
                 lr * kFp32Unit * ((3 * t + 8) * std::fabs(r) + 5 * decay * std::fabs(p));
      p -= lr * (r + decay * p);
      bound[i] += kFp32Unit * std::fabs(p);
    }
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(w.value.f32()[i], ref_w[i], bound[i]);
    EXPECT_NEAR(b.value.f32()[i], ref_b[i], bound[i + 2]);
  }
}

TEST(Optimizer, SgdMomentumFollowsPyTorchRule) {
  Param w = make_param("w", {2, 1}, {1.0f, 2.0f}, {0.5f, -0.5f});
  Sgd opt(0.9f, 0.01f);
  std::vector<Param*> params{&w};
  double p[2] = {1.0, 2.0}, buf[2] = {0, 0};
  // The fp32 update's worst-case error per element, beside the reference (first order; FMA only
  // removes roundings): d = g + decay w (0.01f's rounding and the product, 2 u of decay |w|; the sum,
  // u of |d|), buf = mu buf + d (0.9f's rounding and the product, 2 u of mu |buf|; the sum), w -= lr buf
  // (0.1f's rounding and the product, 2 u of lr |buf|; the subtraction, u of the new |w|), each also
  // carrying the errors of its inputs.
  double e_p[2] = {}, e_buf[2] = {};
  const double u = kFp32Unit;
  for (int t = 0; t < 3; ++t) {
    opt.step(params, 0.1f);
    for (int i = 0; i < 2; ++i) {
      const double d = w.grad.f32()[i] + 0.01 * p[i];
      const double e_d = 0.01 * e_p[i] + u * (2 * 0.01 * std::fabs(p[i]) + std::fabs(d));
      e_buf[i] = 0.9 * e_buf[i] + 2 * u * 0.9 * std::fabs(buf[i]) + e_d;
      buf[i] = 0.9 * buf[i] + d;
      e_buf[i] += u * std::fabs(buf[i]);
      e_p[i] += 0.1 * e_buf[i] + 2 * u * 0.1 * std::fabs(buf[i]);
      p[i] -= 0.1 * buf[i];
      e_p[i] += u * std::fabs(p[i]);
    }
  }
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(w.value.f32()[i], p[i], e_p[i]);
}

TEST(Optimizer, FrozenParametersAreNotUpdatedAndGetNoState) {
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  Param w = make_param("w", {2, 2}, {1, 2, 3, 4}, {1, 1, 1, 1});
  w.trainable = false;
  AdamW opt({});
  std::vector<Param*> params{&w};
  opt.step(params, 0.1f);
  EXPECT_EQ(w.value.f32()[3], 4.0f);
  EXPECT_EQ(ledger.live()[MemCategory::Optimizer], 0u);
}

TEST(Optimizer, ClipScalesToTheGlobalNorm) {
  Param a = make_param("a", {2}, {0, 0}, {3, 0});
  Param b = make_param("b", {1}, {0}, {4});
  std::vector<Param*> params{&a, &b};
  // The norm is summed in double from 9 + 0 + 16: exactly 25, its square root exactly 5 (1e-9 is a
  // formality).
  EXPECT_NEAR(clip_grad_norm(params, 10.0), 5.0, 1e-9);  // below the limit: untouched
  EXPECT_EQ(a.grad.f32()[0], 3.0f);
  EXPECT_NEAR(clip_grad_norm(params, 1.0), 5.0, 1e-9);
  const double norm = std::hypot(a.grad.f32()[0], b.grad.f32()[0]);
  // The scale 1 / (5 + 1e-6) leaves the norm 2e-7 below 1 by design; the scale's rounding to float,
  // the two products and hypotf (1 ulp) add 4 u = 2.4e-7: 1e-5 is over 20 times the sum.
  EXPECT_NEAR(norm, 1.0, 1e-5);
  // Both gradients scaled by the same float: two products and the quotient round, 3 u of 0.75.
  EXPECT_NEAR(a.grad.f32()[0] / b.grad.f32()[0], 0.75, 0.75 * gamma_n(3));  // direction kept
}

TEST(Optimizer, WarmupThenCosineToTenPercent) {
  EXPECT_FLOAT_EQ(scheduled_lr(1.0f, 0, 100, 10, "cosine"), 0.1f);
  EXPECT_FLOAT_EQ(scheduled_lr(1.0f, 9, 100, 10, "cosine"), 1.0f);
  EXPECT_FLOAT_EQ(scheduled_lr(1.0f, 10, 100, 10, "cosine"), 1.0f);
  // The cosine runs in double (error ~1e-16) and is rounded once to float: the float nearest 0.55
  // (0.1), as the expected value is; 1e-6 is 30 times the u of 0.55 by which two roundings could differ.
  EXPECT_NEAR(scheduled_lr(1.0f, 55, 100, 10, "cosine"), 0.55f, 1e-6);  // half way: (1 + 0.1) / 2
  EXPECT_NEAR(scheduled_lr(1.0f, 100, 100, 10, "cosine"), 0.1f, 1e-6);
  EXPECT_FLOAT_EQ(scheduled_lr(0.5f, 70, 100, 0, "constant"), 0.5f);
  EXPECT_THROW(scheduled_lr(1.0f, 5, 10, 0, "linear"), std::runtime_error);
}
