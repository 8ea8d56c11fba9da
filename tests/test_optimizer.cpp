// Optimizers, clipping and the schedule against their formulas, computed here in double.
#include <gtest/gtest.h>

#include <cmath>

#include "train/optimizer.h"

using namespace frugal;

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
      p -= lr * (mhat / (std::sqrt(vhat) + 1e-8) + decay * p);
    }
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(w.value.f32()[i], ref_w[i], 1e-6);
    EXPECT_NEAR(b.value.f32()[i], ref_b[i], 1e-6);
  }
}

TEST(Optimizer, SgdMomentumFollowsPyTorchRule) {
  Param w = make_param("w", {2, 1}, {1.0f, 2.0f}, {0.5f, -0.5f});
  Sgd opt(0.9f, 0.01f);
  std::vector<Param*> params{&w};
  double p[2] = {1.0, 2.0}, buf[2] = {0, 0};
  for (int t = 0; t < 3; ++t) {
    opt.step(params, 0.1f);
    for (int i = 0; i < 2; ++i) {
      const double d = w.grad.f32()[i] + 0.01 * p[i];
      buf[i] = 0.9 * buf[i] + d;
      p[i] -= 0.1 * buf[i];
    }
  }
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(w.value.f32()[i], p[i], 1e-6);
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
  EXPECT_NEAR(clip_grad_norm(params, 10.0), 5.0, 1e-9);  // below the limit: untouched
  EXPECT_EQ(a.grad.f32()[0], 3.0f);
  EXPECT_NEAR(clip_grad_norm(params, 1.0), 5.0, 1e-9);
  const double norm = std::hypot(a.grad.f32()[0], b.grad.f32()[0]);
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_NEAR(a.grad.f32()[0] / b.grad.f32()[0], 0.75, 1e-6);  // direction kept
}

TEST(Optimizer, WarmupThenCosineToTenPercent) {
  EXPECT_FLOAT_EQ(scheduled_lr(1.0f, 0, 100, 10, "cosine"), 0.1f);
  EXPECT_FLOAT_EQ(scheduled_lr(1.0f, 9, 100, 10, "cosine"), 1.0f);
  EXPECT_FLOAT_EQ(scheduled_lr(1.0f, 10, 100, 10, "cosine"), 1.0f);
  EXPECT_NEAR(scheduled_lr(1.0f, 55, 100, 10, "cosine"), 0.55f, 1e-6);  // half way: (1 + 0.1) / 2
  EXPECT_NEAR(scheduled_lr(1.0f, 100, 100, 10, "cosine"), 0.1f, 1e-6);
  EXPECT_FLOAT_EQ(scheduled_lr(0.5f, 70, 100, 0, "constant"), 0.5f);
  EXPECT_THROW(scheduled_lr(1.0f, 5, 10, 0, "linear"), std::runtime_error);
}
