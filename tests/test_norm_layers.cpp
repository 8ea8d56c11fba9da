// GroupNorm (and LayerNorm-like GroupNorm(1)): the formula, and the remedy it offers: a CNN
// normalised per sample accumulates gradients exactly. (Finite differences and measure mode:
// tests/test_layers.cpp.)
#include <gtest/gtest.h>

#include <cmath>

#include "gradcheck.h"
#include "models/cnn.h"
#include "nn/groupnorm.h"
#include "train/accumulate.h"

using namespace frugal;
using namespace frugal::testing;

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
      for (int64_t c = g * C / G; c < (g + 1) * C / G; ++c)
        for (int64_t s = 0; s < S; ++s) {
          const double ref = (x.f32()[(n * C + c) * S + s] - mean) / std::sqrt(var + 1e-5) * params[0]->value.f32()[c] +
                             params[1]->value.f32()[c];
          EXPECT_NEAR(y.f32()[(n * C + c) * S + s], ref, 1e-5);
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
  auto grad_diff = [&](const std::string& norm) {
    auto full = make(norm), acc = make(norm);
    accumulate_gradients(*full, batch, 1, RunContext{});
    accumulate_gradients(*acc, batch, 4, RunContext{});
    double worst = 0;
    const auto pf = full->params(), pa = acc->params();
    for (size_t k = 0; k < pf.size(); ++k) {
      double d = 0, n = 0;
      for (int64_t i = 0; i < pf[k]->grad.numel(); ++i) {
        d += std::pow(pa[k]->grad.f32()[i] - pf[k]->grad.f32()[i], 2);
        n += std::pow(pf[k]->grad.f32()[i], 2);
      }
      worst = std::max(worst, std::sqrt(d / n));
    }
    return worst;
  };
  EXPECT_LE(grad_diff("group"), 1e-5);
  EXPECT_LE(grad_diff("layer"), 1e-5);
  EXPECT_GT(grad_diff("batch"), 1e-3);
}
