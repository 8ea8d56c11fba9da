// Vision and MLP layers: Conv2d, MaxPool2d, AvgPool2d, BatchNorm, ReLU, Flatten and the MSE
// kernel: exact comparisons against naive reference loops, PyTorch's BatchNorm running-statistics
// rule, and exact measured bytes. Finite differences, measure mode against real runs and half
// precision for every layer are tests/test_layers.cpp's table.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/ledger.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "gradcheck.h"
#include "kernels/mse.h"
#include "nn/activations.h"
#include "nn/batchnorm.h"
#include "nn/conv2d.h"
#include "nn/pool2d.h"
#include "tolerances.h"
#include "train/gradient_snapshot.h"

using namespace frugal;
using frugal::testing::gamma_n;
using frugal::testing::kFp32Unit;
using frugal::testing::random_tensor;
using frugal::testing::randomize_params;

namespace {

// Float central differences, step 1e-2, of losses that sum in double: rounding (u / eps of the
// loss's magnitude) about 1e-5 relative, truncation eps^2 |f'''| / 6 (none for a quadratic): 1e-2
// leaves room for both to be 100x larger, and a wrong or missing term of a gradient is O(1).
constexpr double kFdTolerance = 1e-2;
constexpr double kFp64Unit = 0x1p-53;  // the double sums' unit roundoff

// A normalisation as the kernels compute it, y = x s + t with s = fl(gamma r), t = fl(beta - fl(m s)),
// against (x - m) r gamma + beta in double: r rounded once and the product s once (each u of
// |(x - m) s|), m once (u |m s|), the products m s and x s, the difference and the sum once each
// (u of |m s|, |x s|, |beta| + |m s|, |y|): seven roundings, each at most u of one of the magnitudes
// below (first order; FMA or not).
double normalise_bound(double x, double m, double gamma_r, double beta, double y) {
  return gamma_n(7) * (std::fabs(gamma_r) * (std::fabs(x) + std::fabs(m)) * 2 + std::fabs(beta) + std::fabs(y));
}

// Direct convolution, the definition: y[n,co,oh,ow] = b[co] + sum w[co,ci,i,j] x[n,ci,oh*s-p+i,ow*s-p+j].
// `magnitude` (when given): the same sum over the terms' absolute values.
std::vector<double> naive_conv(const Tensor& x, Conv2d& conv, int64_t k, int64_t s, int64_t p,
                               std::vector<double>* magnitude = nullptr) {
  const int64_t N = x.dim(0), Ci = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t Co = conv.weight().value.dim(0);
  const int64_t Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
  const float* w = conv.weight().value.f32();
  std::vector<double> y;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t co = 0; co < Co; ++co)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = conv.has_bias() ? conv.bias().value.f32()[co] : 0.0, mag = std::fabs(acc);
          for (int64_t ci = 0; ci < Ci; ++ci)
            for (int64_t i = 0; i < k; ++i)
              for (int64_t j = 0; j < k; ++j) {
                const int64_t ih = oh * s - p + i, iw = ow * s - p + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const double term = static_cast<double>(w[((co * Ci + ci) * k + i) * k + j]) *
                                    x.f32()[((n * Ci + ci) * H + ih) * W + iw];
                acc += term;
                mag += std::fabs(term);
              }
          y.push_back(acc);
          if (magnitude) magnitude->push_back(mag);
        }
  return y;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Conv2d

TEST(VisionConv2d, MatchesDirectConvolution) {
  struct Case { int64_t cin, cout, h, w, k, s, p; bool bias; };
  for (const Case c : {Case{3, 4, 6, 5, 3, 1, 1, true}, Case{3, 4, 7, 6, 3, 2, 0, true},
                       Case{2, 5, 6, 6, 3, 2, 1, false}, Case{4, 3, 5, 5, 1, 1, 0, true},
                       Case{2, 3, 5, 4, 2, 1, 0, true}}) {
    Conv2d conv("c", c.cin, c.cout, c.k, c.s, c.p, c.bias, /*seed=*/3);
    Tensor x = random_tensor({2, c.cin, c.h, c.w}, 11);
    Saved saved;
    Tensor y = conv.forward(x, saved, RunContext{});
    std::vector<double> magnitude;
    const std::vector<double> ref = naive_conv(x, conv, c.k, c.s, c.p, &magnitude);
    ASSERT_EQ(y.numel(), static_cast<int64_t>(ref.size()));
    EXPECT_EQ(y.dim(2), (c.h + 2 * c.p - c.k) / c.s + 1);
    EXPECT_EQ(y.dim(3), (c.w + 2 * c.p - c.k) / c.s + 1);
    // The GEMM's fp32 dot of K = cin k k products (padding's zeros among them) added to the bias:
    // within gamma_{K+1} of the terms' magnitudes, in any order, FMA or not (the double reference's
    // own error is 2^-29 of that).
    const double g = gamma_n(static_cast<double>(c.cin * c.k * c.k + 1));
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(y.f32()[i], ref[i], g * magnitude[i]) << "k=" << c.k << " i=" << i;
  }
}

TEST(VisionConv2d, ParameterNamesAndShapesFollowPyTorch) {
  Conv2d conv("blocks.0.conv", 3, 8, 5);
  std::vector<Param*> params;
  conv.collect_params(params);
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0]->name, "blocks.0.conv.weight");
  EXPECT_EQ(params[0]->value.shape(), Shape({8, 3, 5, 5}));
  EXPECT_EQ(params[1]->name, "blocks.0.conv.bias");
  EXPECT_EQ(params[1]->value.shape(), Shape({8}));
  // PyTorch's default init: uniform in +-1/sqrt(fan_in).
  const float bound = 1.0f / std::sqrt(75.0f);
  for (int64_t i = 0; i < params[0]->value.numel(); ++i) ASSERT_LE(std::fabs(params[0]->value.f32()[i]), bound);
}

TEST(VisionConv2d, BackwardAccumulatesParameterGradients) {
  Conv2d conv("c", 2, 3, 3, 1, 1);
  Tensor x = random_tensor({2, 2, 4, 4}, 31);
  Saved saved;
  Tensor y = conv.forward(x, saved, RunContext{});
  Tensor dy = random_tensor(y.shape(), 32);
  conv.backward(dy, saved, RunContext{});
  std::vector<float> once(conv.weight().grad.f32(), conv.weight().grad.f32() + conv.weight().grad.numel());
  const float bias_once = conv.bias().grad.f32()[1];
  conv.backward(dy, saved, RunContext{});
  // Each backward adds the same N P terms per element (N = 2 images of P = 16 pixels; magnitudes M:
  // sum |dy||x| for the weight, sum |dy| for the bias) with at most N (P + 1) roundings on any term's
  // path (a P-term GEMM or double sum, then the add into the gradient). So once = T + e, |e| <=
  // gamma_n M, T the exact sum; the second backward adds them to once (|once| <= M), within
  // gamma_n (|once| + M): |twice - 2 once| <= gamma_n (3 M) + O(u^2), 4 gamma_n M taken.
  const int64_t N = 2, Ci = 2, Co = 3, H = 4, W = 4, P = H * W;
  const double g = 4 * gamma_n(static_cast<double>(N * (P + 1)));
  std::vector<double> m_w(once.size(), 0.0);
  double m_b = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t co = 0; co < Co; ++co)
      for (int64_t oh = 0; oh < H; ++oh)
        for (int64_t ow = 0; ow < W; ++ow) {
          const double d = std::fabs(dy.f32()[((n * Co + co) * H + oh) * W + ow]);
          if (co == 1) m_b += d;
          for (int64_t ci = 0; ci < Ci; ++ci)
            for (int64_t i = 0; i < 3; ++i)
              for (int64_t j = 0; j < 3; ++j) {  // padding 1: input pixel (oh - 1 + i, ow - 1 + j)
                const int64_t ih = oh - 1 + i, iw = ow - 1 + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                m_w[((co * Ci + ci) * 3 + i) * 3 + j] += d * std::fabs(x.f32()[((n * Ci + ci) * H + ih) * W + iw]);
              }
        }
  for (size_t i = 0; i < once.size(); ++i) ASSERT_NEAR(conv.weight().grad.f32()[i], 2 * once[i], g * m_w[i]);
  EXPECT_NEAR(conv.bias().grad.f32()[1], 2 * bias_once, g * m_b);
}

TEST(VisionConv2d, FrozenWeightGetsNoGradient) {
  Conv2d conv("c", 2, 3, 3, 1, 1);
  conv.weight().trainable = false;
  Tensor x = random_tensor({1, 2, 4, 4}, 33);
  Saved saved;
  Tensor y = conv.forward(x, saved, RunContext{});
  Tensor dx = conv.backward(random_tensor(y.shape(), 34), saved, RunContext{});
  EXPECT_FALSE(conv.weight().grad.defined());
  EXPECT_TRUE(conv.bias().grad.defined());
  EXPECT_EQ(dx.shape(), x.shape());
}

TEST(VisionConv2d, RejectsWrongInputWithClearMessage) {
  Conv2d conv("blocks.0.conv", 3, 4, 3);
  Saved saved;
  try {
    conv.forward(Tensor::zeros({2, 4, 28, 28}, DType::F32, MemCategory::Activations), saved, RunContext{});
    FAIL() << "expected frugal::Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "conv2d blocks.0.conv: expected input with 3 channels, got [2, 4, 28, 28]");
  }
  EXPECT_THROW(conv.forward(Tensor::zeros({2, 3, 28}, DType::F32, MemCategory::Activations), saved, RunContext{}),
               Error);
  EXPECT_THROW(conv.forward(Tensor::zeros({2, 3, 2, 2}, DType::F32, MemCategory::Activations), saved, RunContext{}),
               Error);
}

// ---------------------------------------------------------------------------------------------
// Pooling

TEST(VisionPool, MaxPoolForwardPicksWindowMaxima) {
  MaxPool2d pool(2);
  Tensor x = Tensor::empty({1, 1, 4, 4}, DType::F32, MemCategory::Activations);
  const float v[16] = {1, 5, 2, 0, 3, 4, 8, 7, -1, -2, -3, -4, -5, -6, -7, -0.5f};
  std::copy(v, v + 16, x.f32());
  Saved saved;
  Tensor y = pool.forward(x, saved, RunContext{});
  ASSERT_EQ(y.shape(), Shape({1, 1, 2, 2}));
  EXPECT_EQ(y.f32()[0], 5);
  EXPECT_EQ(y.f32()[1], 8);
  EXPECT_EQ(y.f32()[2], -1);
  EXPECT_EQ(y.f32()[3], -0.5f);
  ASSERT_EQ(saved.tensors.size(), 1u);
  EXPECT_EQ(saved.tensors[0].dtype(), DType::I32);
  EXPECT_EQ(saved.tensors[0].i32()[1], 6);  // h=1, w=2
}

TEST(VisionPool, AvgPoolForward) {
  AvgPool2d pool(2);
  Tensor x = random_tensor({2, 3, 5, 4}, 43);  // H = 5: the last row is dropped (floor)
  Saved saved;
  Tensor y = pool.forward(x, saved, RunContext{});
  ASSERT_EQ(y.shape(), Shape({2, 3, 2, 2}));
  // Plane 4 = (n=1, c=1); output (1, 1) averages input rows 2..3, columns 2..3.
  const float* p = x.f32() + 4 * (5 * 4);
  const double expect = (p[2 * 4 + 2] + p[2 * 4 + 3] + p[3 * 4 + 2] + p[3 * 4 + 3]) / 4.0;
  // Both sum the four floats in fp32 (3 roundings: within gamma_3 of sum |p| each) and divide by
  // 4 exactly: they differ by at most 2 gamma_3 sum |p| / 4.
  const double magnitude =
      (std::fabs(p[2 * 4 + 2]) + std::fabs(p[2 * 4 + 3]) + std::fabs(p[3 * 4 + 2]) + std::fabs(p[3 * 4 + 3])) / 4.0;
  EXPECT_NEAR(y.f32()[4 * (2 * 2) + 1 * 2 + 1], expect, 2 * gamma_n(3) * magnitude);
  EXPECT_TRUE(saved.tensors.empty());
}

// ---------------------------------------------------------------------------------------------
// BatchNorm

TEST(VisionBatchNorm, RunningStatisticsFollowPyTorchRule) {
  const int64_t N = 4, C = 3, H = 2, W = 3, M = N * H * W;
  BatchNorm bn("features.1", C);
  std::vector<Param*> buffers;
  bn.collect_buffers(buffers);
  ASSERT_EQ(buffers.size(), 2u);
  EXPECT_EQ(buffers[0]->name, "features.1.running_mean");
  EXPECT_EQ(buffers[1]->name, "features.1.running_var");
  EXPECT_FALSE(buffers[0]->trainable);
  EXPECT_EQ(buffers[0]->value.category(), MemCategory::Params);
  std::vector<Param*> params;
  bn.collect_params(params);
  ASSERT_EQ(params.size(), 2u);  // the buffers are not for the optimizer
  EXPECT_EQ(params[0]->name, "features.1.weight");
  EXPECT_EQ(params[1]->name, "features.1.bias");

  const float init_mean[C] = {0.5f, -1.0f, 0.0f}, init_var[C] = {2.0f, 0.5f, 1.0f};
  for (int c = 0; c < C; ++c) {
    bn.running_mean().value.f32()[c] = init_mean[c];
    bn.running_var().value.f32()[c] = init_var[c];
  }
  Tensor x = random_tensor({N, C, H, W}, 61, 1.5f);
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] += 0.7f;  // a non-zero mean
  Saved saved;
  Tensor y = bn.forward(x, saved, RunContext{});
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0, sq = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < H * W; ++s) sum += x.f32()[(n * C + c) * H * W + s];
    const double mean = sum / M;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < H * W; ++s) {
        const double d = x.f32()[(n * C + c) * H * W + s] - mean;
        sq += d * d;
      }
    // The layer computes both statistics in double from the same floats, as here, and rounds each
    // to float once: u of the value (the double sums' own error, 24 2^-53 of sums below 100, is
    // about 1e-13).
    const double want_mean = 0.9 * init_mean[c] + 0.1 * mean, want_var = 0.9 * init_var[c] + 0.1 * sq / (M - 1);
    EXPECT_NEAR(bn.running_mean().value.f32()[c], want_mean, kFp32Unit * std::fabs(want_mean) + 1e-12);
    EXPECT_NEAR(bn.running_var().value.f32()[c], want_var, kFp32Unit * std::fabs(want_var) + 1e-12);
    // The output uses the biased variance and gamma = 1, beta = 0 (normalise_bound's error model).
    const double rstd = 1.0 / std::sqrt(sq / M + 1e-5);
    for (int64_t s = 0; s < H * W; ++s) {
      const double xv = x.f32()[(1 * C + c) * H * W + s], want = (xv - mean) * rstd;
      ASSERT_NEAR(y.f32()[(1 * C + c) * H * W + s], want, normalise_bound(xv, mean, rstd, 0.0, want));
    }
  }
}

TEST(VisionBatchNorm, RecomputeLeavesRunningStatisticsUnchanged) {
  BatchNorm bn("bn", 2);
  Tensor x = random_tensor({5, 2}, 62, 3.0f);
  RunContext first;
  Saved s1;
  Tensor y1 = bn.forward(x, s1, first);
  const std::vector<float> mean(bn.running_mean().value.f32(), bn.running_mean().value.f32() + 2);
  const std::vector<float> var(bn.running_var().value.f32(), bn.running_var().value.f32() + 2);
  EXPECT_NE(mean[0], 0.0f);  // the first forward did update them
  RunContext again;
  again.recompute = true;
  Saved s2;
  Tensor y2 = bn.forward(x, s2, again);
  for (int c = 0; c < 2; ++c) {
    EXPECT_EQ(bn.running_mean().value.f32()[c], mean[c]);
    EXPECT_EQ(bn.running_var().value.f32()[c], var[c]);
  }
  for (int64_t i = 0; i < y1.numel(); ++i) ASSERT_EQ(y1.f32()[i], y2.f32()[i]);  // bit-identical recompute
}

TEST(VisionBatchNorm, EvalUsesRunningStatistics) {
  BatchNorm bn("bn", 2);
  randomize_params(bn, 63);
  bn.running_mean().value.f32()[0] = 0.25f;
  bn.running_mean().value.f32()[1] = -2.0f;
  bn.running_var().value.f32()[0] = 4.0f;
  bn.running_var().value.f32()[1] = 0.5f;
  Tensor x = random_tensor({3, 2, 2, 2}, 64);
  RunContext rc;
  rc.training = false;
  Saved saved;
  Tensor y = bn.forward(x, saved, rc);
  const float* g = bn.weight().value.f32();
  const float* b = bn.bias().value.f32();
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t s = 0; s < 4; ++s) {
        const int64_t i = (n * 2 + c) * 4 + s;
        const double rm = bn.running_mean().value.f32()[c], rv = bn.running_var().value.f32()[c];
        const double r = 1 / std::sqrt(rv + 1e-5), want = (x.f32()[i] - rm) * r * g[c] + b[c];
        ASSERT_NEAR(y.f32()[i], want, normalise_bound(x.f32()[i], rm, g[c] * r, b[c], want));
      }
  EXPECT_EQ(bn.running_mean().value.f32()[0], 0.25f);  // eval never updates them
  EXPECT_EQ(bn.running_var().value.f32()[1], 0.5f);
}

TEST(VisionBatchNorm, RejectsWrongChannelsAndSingleValueBatches) {
  BatchNorm bn("bn", 3);
  Saved saved;
  EXPECT_THROW(bn.forward(Tensor::zeros({2, 4}, DType::F32, MemCategory::Activations), saved, RunContext{}), Error);
  EXPECT_THROW(bn.forward(Tensor::zeros({1, 3}, DType::F32, MemCategory::Activations), saved, RunContext{}), Error);
}

// ---------------------------------------------------------------------------------------------
// ReLU, Flatten

TEST(VisionReLU, SavesItsOutput) {
  ReLU relu;
  Tensor x = random_tensor({4, 5}, 72);
  Saved saved;
  Tensor y = relu.forward(x, saved, RunContext{});
  ASSERT_EQ(saved.tensors.size(), 1u);
  EXPECT_EQ(saved.tensors[0].buffer(), y.buffer());
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(y.f32()[i], std::max(0.0f, x.f32()[i]));
}

TEST(VisionFlatten, IsAViewBothWays) {
  Flatten flatten;
  Tensor x = random_tensor({2, 3, 4, 5}, 73);
  Saved saved;
  Tensor y = flatten.forward(x, saved, RunContext{});
  EXPECT_EQ(y.shape(), Shape({2, 60}));
  EXPECT_EQ(y.buffer(), x.buffer());
  EXPECT_TRUE(saved.tensors.empty());
  Tensor dy = random_tensor({2, 60}, 74);
  Tensor dx = flatten.backward(dy, saved, RunContext{});
  EXPECT_EQ(dx.shape(), x.shape());
  EXPECT_EQ(dx.buffer(), dy.buffer());
}

// ---------------------------------------------------------------------------------------------
// MSE

TEST(VisionMse, EqualsTorchMeanAndCentralDifferences) {
  const int64_t rows = 5, cols = 3;
  Tensor pred = random_tensor({rows, cols}, 81);
  Tensor target = random_tensor({rows, cols}, 82);
  std::vector<float> dpred(rows * cols);
  const double loss = mse_forward_backward(pred.f32(), target.f32(), rows, cols, rows, dpred.data());
  double mean = 0;
  for (int64_t i = 0; i < rows * cols; ++i) mean += std::pow(double(pred.f32()[i]) - target.f32()[i], 2);
  // F.mse_loss(reduction='mean'); the kernel subtracts in float, as PyTorch does: each difference
  // rounds once (u), so its square, exact in double, is within 2u of the exact square; the terms are
  // positive, so the sum is too; then both sums (15 terms) and scales round in double.
  const double mse_bound = (2 * kFp32Unit + 2 * gamma_n(rows * cols + 2, kFp64Unit)) * loss;
  EXPECT_NEAR(loss, mean / (rows * cols), mse_bound);

  const float eps = 1e-2f;
  std::vector<double> analytic, numeric;
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float orig = pred.f32()[i];
    pred.f32()[i] = orig + eps;
    const double plus = mse_forward_backward(pred.f32(), target.f32(), rows, cols, rows, nullptr);
    pred.f32()[i] = orig - eps;
    const double minus = mse_forward_backward(pred.f32(), target.f32(), rows, cols, rows, nullptr);
    pred.f32()[i] = orig;
    numeric.push_back((plus - minus) / (2.0 * eps));
    analytic.push_back(dpred[i]);
  }
  EXPECT_LE(relative_difference(analytic, numeric), kFdTolerance);
}

TEST(VisionMse, MicroBatchesSharingTheNormalizerAddUpToTheBatch) {
  const int64_t rows = 6, cols = 4;
  Tensor pred = random_tensor({rows, cols}, 83);
  Tensor target = random_tensor({rows, cols}, 84);
  std::vector<float> full(rows * cols), parts(rows * cols);
  const double whole = mse_forward_backward(pred.f32(), target.f32(), rows, cols, rows, full.data());
  const double a = mse_forward_backward(pred.f32(), target.f32(), 4, cols, rows, parts.data());
  const double b = mse_forward_backward(pred.f32() + 4 * cols, target.f32() + 4 * cols, 2, cols, rows,
                                        parts.data() + 4 * cols);
  // The same squared float differences (exact in double) summed in double in two orders: 24 terms
  // and the scale, then a + b: each side within gamma_26 (double's unit) of the exact value.
  EXPECT_NEAR(a + b, whole, 2 * gamma_n(rows * cols + 2, kFp64Unit) * whole);
  for (int64_t i = 0; i < rows * cols; ++i) ASSERT_EQ(parts[i], full[i]);
}

// ---------------------------------------------------------------------------------------------
// Measure mode, exact bytes (tests/test_layers.cpp checks every layer's measured bytes against a real run).

TEST(VisionMeasure, Conv2dBooksItsOutputAndOneIm2colMatrix) {
  // Exact bytes: output (Activations) and one image's im2col matrix (Workspace, freed after).
  MemoryLedger ledger(true);
  LedgerScope scope(ledger);
  Conv2d conv("c", 3, 8, 3, 2, 1);
  Tensor x = Tensor::empty({4, 3, 10, 10}, DType::F32, MemCategory::Activations);
  ledger.reset_peaks();
  Saved saved;
  Tensor y = conv.forward(x, saved, RunContext{});
  EXPECT_EQ(y.shape(), Shape({4, 8, 5, 5}));
  EXPECT_EQ(ledger.live()[MemCategory::Activations], (4 * 3 * 10 * 10 + 4 * 8 * 5 * 5) * 4u);
  EXPECT_EQ(ledger.peak()[MemCategory::Workspace], 3 * 9 * 5 * 5 * 4u);
  EXPECT_EQ(ledger.live()[MemCategory::Workspace], 0u);
}

TEST(VisionMeasure, FlattenAllocatesNothing) {
  MemoryLedger ledger(true);
  LedgerScope scope(ledger);
  Flatten flatten;
  Tensor x = Tensor::empty({4, 3, 5, 5}, DType::F32, MemCategory::Activations);
  const size_t before = ledger.live().total;
  Saved saved;
  Tensor y = flatten.forward(x, saved, RunContext{});
  EXPECT_EQ(y.shape(), Shape({4, 75}));
  EXPECT_EQ(ledger.live().total, before);
}
