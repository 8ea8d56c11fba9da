// GroupNorm (and LayerNorm-like GroupNorm(1)): the formula, and the remedy it offers: a CNN
// normalised per sample accumulates gradients exactly. (Finite differences and measure mode:
// tests/test_layers.cpp.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "gradcheck.h"
#include "models/cnn.h"
#include "nn/groupnorm.h"
#include "train/accumulate.h"
#include "train/gradient_snapshot.h"

using namespace frugal;
using namespace frugal::testing;

namespace {
// The kernel's y = x s + t, s = fl(gamma r), t = fl(beta - fl(m s)), r and m rounded to float,
// against (x - m) r gamma + beta in double: seven roundings (r, s, m, m s, t, x s, the sum), each
// at most u of one of the magnitudes below (first order, FMA or not; as in test_vision_layers.cpp).
double normalise_bound(double x, double m, double gamma_r, double beta, double y) {
  return gamma_n(7) * (std::fabs(gamma_r) * (std::fabs(x) + std::fabs(m)) * 2 + std::fabs(beta) + std::fabs(y));
}
}  // namespace

TEST(NormLayers, GroupNormMatchesFormula) {
  const int64_t N = 2, C = 4, S = 3, G = 2;
  GroupNorm layer("gn", G, C, 1e-5f);
  randomize_params(layer, 25);
  std::vector<Param*> params;
  layer.collect_params(params);
  Tensor x = random_tensor({N, C, S}, 26);
  Saved saved;
  Tensor y = layer.forward(x, saved, {});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g) {
      double mean = 0, var = 0;
      for (int64_t i = 0; i < C / G * S; ++i) mean += x.f32()[(n * C + g * C / G) * S + i];
      mean /= C / G * S;
      for (int64_t i = 0; i < C / G * S; ++i) var += std::pow(x.f32()[(n * C + g * C / G) * S + i] - mean, 2);
      var /= C / G * S;
      // The moments are the kernel's too, in double; its eps is 1e-5f, 2.5e-14 off 1e-5 (a 1e-13
      // relative change of r at these variances: far below).
      const double r = 1 / std::sqrt(var + 1e-5);
      for (int64_t c = g * C / G; c < (g + 1) * C / G; ++c)
        for (int64_t s = 0; s < S; ++s) {
          const double xv = x.f32()[(n * C + c) * S + s], gamma = params[0]->value.f32()[c], beta = params[1]->value.f32()[c];
          const double ref = (xv - mean) * r * gamma + beta;
          EXPECT_NEAR(y.f32()[(n * C + c) * S + s], ref, normalise_bound(xv, mean, gamma * r, beta, ref));
        }
    }
}

TEST(NormLayers, CnnWithGroupNormAccumulatesExactly) {
  auto make = [](const std::string& norm) {
    CnnConfig c;
    c.channels = 8;  // 4 groups of 2 (one channel per group would make the conv bias gradient exactly 0)
    c.n_blocks = 1;
    c.norm = norm;
    auto m = std::make_unique<Cnn>(c);
    m->init_weights(27);
    return m;
  };
  Batch batch{random_tensor({8, 1, 28, 28}, 28), Tensor::empty({8}, DType::I32, MemCategory::Activations)};
  for (int i = 0; i < 8; ++i) batch.targets.i32()[i] = i % 10;
  // Normalised per sample, the micro-batches' gradients add up to the batch's: two summation orders
  // of one batch gradient (tests/gradcheck.h), against the samples' own gradients' magnitudes. n,
  // the reductions on the longest path: forward, the conv's K = 9 and its bias, the head's K = 8 x
  // 14 x 14 = 1568 and its bias; backward, the head's dx (K = 10 classes), then the conv weight's
  // gradient, 784 pixels of each of the 8 images, each image's sum added to it. (The norms, ReLU,
  // pooling and the loss work per sample, the same operations whatever the micro-batch.)
  const double n = 10 + 1569 + 10 + 8 * (784 + 1);
  auto expect_same_sum = [&](const std::string& norm) {
    const auto full = make(norm), acc = make(norm);
    accumulate_gradients(*full, batch, 1, RunContext{});
    accumulate_gradients(*acc, batch, 4, RunContext{});
    const GradientSnapshot magnitude = per_sample_magnitudes([&] { return std::unique_ptr<Model>(make(norm)); }, batch);
    const SumOrderCheck c = against_sum_order_bound(snapshot_gradients(*acc), snapshot_gradients(*full), magnitude, n);
    EXPECT_LE(c.difference, c.bound) << norm << ": " << c.name;
    return c.bound;
  };
  auto grad_diff = [&](const std::string& norm) {
    auto full = make(norm), acc = make(norm);
    accumulate_gradients(*full, batch, 1, RunContext{});
    accumulate_gradients(*acc, batch, 4, RunContext{});
    double worst = 0;
    const auto pf = full->params(), pa = acc->params();
    for (size_t k = 0; k < pf.size(); ++k) {
      // A bias straight before a BatchNorm has gradient exactly 0 (the mean subtracts it): what is
      // there is rounding over rounding, which says nothing about the statistics.
      if (norm == "batch" && pf[k]->name.find("conv") != std::string::npos && pf[k]->name.find("bias") != std::string::npos)
        continue;
      double d = 0, n = 0;
      for (int64_t i = 0; i < pf[k]->grad.numel(); ++i) {
        d += std::pow(pa[k]->grad.f32()[i] - pf[k]->grad.f32()[i], 2);
        n += std::pow(pf[k]->grad.f32()[i], 2);
      }
      worst = std::max(worst, std::sqrt(d / n));
    }
    return worst;
  };
  const double group = expect_same_sum("group"), layer = expect_same_sum("layer");
  // BatchNorm normalises each micro-batch of 2 images with its own statistics, not the 8 images':
  // the gradients differ by more than rounding may move them (the bound of the models above, about
  // 2e-3: n = 7869 roundings all aligned); the tensors with a gradient differ by 7e-3 to 8e-2.
  EXPECT_GT(grad_diff("batch"), std::max(group, layer));
}
