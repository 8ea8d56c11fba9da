// GPT-2's layers beyond tests/test_layers.cpp's table: the attention kernel against a direct
// implementation, the fused attention kernel against the materialising one, GELU's values, the two weight layouts, the tied head's gradient into wte, and the
// loss by finite differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/threading.h"
#include "fixtures.h"
#include "gradcheck.h"
#include "kernels/cross_entropy.h"
#include "kernels/flash_attention.h"
#include "kernels/gemm.h"
#include "models/gpt.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/gelu.h"
#include "nn/layernorm.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "nn/transformer_block.h"
#include "train/loss.h"
#include "tolerances.h"

using namespace frugal;
using namespace frugal::testing;

namespace {
void expect_all_below(const std::vector<GradCheckEntry>& entries, double tol) {
  ASSERT_FALSE(entries.empty());
  for (const auto& e : entries) EXPECT_LE(e.rel_error, tol) << e.what;
}

// glibc's vector math library (libmvec: gelu, softmax and the fused attention are compiled with
// -ffast-math to use it) promises at most 4 ulp; one ulp of x is at most 2u|x|.
constexpr double kVecMathError = 4 * 2 * kFp32Unit;

// Worst-case first-order error bounds, element by element, of one fp32 causal attention pass
// (either kernel), from the exact values computed here in double. Every sum of n fp32 terms errs by
// at most gamma_n times the sum of the magnitudes, whatever its order and FMA use (so the bound
// holds for every GEMM kernel). Scores S = scale Q K^T: gamma_{hd+3} (hd products, alpha, scale's
// own two roundings). Probabilities: relative error rho = both scores' errors (the row's max or
// lse subtracts one) + u per unit of exponent argument (the subtractions before each exp, at most
// 4 A_i in total, A_i = max_j |s_ij| + log(i + 1)) + each exp and rescale (libmvec's 4 ulp + one
// product, the fused kernel's ceil(T / tile) rescales plus 3) + gamma_T (the normaliser's sum).
// Then Y = P V, dV = P^T dY, dP = dY V^T, the row dots, dS = P (dP - dot) scale, dQ = dS K and
// dK = dS^T Q, each adding its own sum's gamma on top of the errors it inherits.
struct AttentionBounds {
  std::vector<double> y, y_bound, dqkv, dqkv_bound;  // exact values and error bounds, (B, T, D) and (B, T, 3D)
};

AttentionBounds attention_bounds(const float* qkv, const float* dy, int64_t B, int64_t T, int64_t D, int64_t H,
                                 int64_t tile) {
  const int64_t hd = D / H;
  const double u = kFp32Unit, scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const double g_T = gamma_n(static_cast<double>(T)), g_hd = gamma_n(static_cast<double>(hd));
  const double g_s = gamma_n(static_cast<double>(hd + 3));
  const double per_exp = static_cast<double>((T + tile - 1) / tile + 3) * (kVecMathError + u);
  AttentionBounds r;
  r.y.assign(static_cast<size_t>(B * T * D), 0.0);
  r.y_bound = r.y;
  r.dqkv.assign(static_cast<size_t>(B * T * 3 * D), 0.0);
  r.dqkv_bound = r.dqkv;
  std::vector<double> s(static_cast<size_t>(T)), es(s), p(s), rho(s), dp(s), a(s), ds(s), eds(s);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const auto at = [&](int64_t t, int64_t part, int64_t d) { return static_cast<size_t>((b * T + t) * 3 * D + part * D + h * hd + d); };
      const auto x = [&](int64_t t, int64_t part, int64_t d) { return static_cast<double>(qkv[at(t, part, d)]); };
      for (int64_t i = 0; i < T; ++i) {
        double mx = -INFINITY, es_max = 0, s_max = 0, sum = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0, mag = 0;
          for (int64_t d = 0; d < hd; ++d) dot += x(i, 0, d) * x(j, 1, d), mag += std::fabs(x(i, 0, d) * x(j, 1, d));
          s[j] = scale * dot;
          es[j] = g_s * scale * mag;
          mx = std::max(mx, s[j]);
          es_max = std::max(es_max, es[j]);
          s_max = std::max(s_max, std::fabs(s[j]));
        }
        const double arg = 4 * u * (s_max + std::log(static_cast<double>(i + 1)));
        for (int64_t j = 0; j <= i; ++j) sum += (p[j] = std::exp(s[j] - mx));
        for (int64_t j = 0; j <= i; ++j) p[j] /= sum, rho[j] = es[j] + es_max + arg + per_exp + g_T;
        for (int64_t d = 0; d < hd; ++d) {
          double y = 0, bound = 0;
          for (int64_t j = 0; j <= i; ++j) y += p[j] * x(j, 2, d), bound += p[j] * std::fabs(x(j, 2, d)) * (rho[j] + g_T);
          r.y[static_cast<size_t>((b * T + i) * D + h * hd + d)] = y;
          r.y_bound[static_cast<size_t>((b * T + i) * D + h * hd + d)] = bound;
        }
        if (dy == nullptr) continue;
        const auto g = [&](int64_t d) { return static_cast<double>(dy[(b * T + i) * D + h * hd + d]); };
        double dot = 0, edot = 0;
        for (int64_t j = 0; j <= i; ++j) {
          dp[j] = a[j] = 0;
          for (int64_t d = 0; d < hd; ++d) dp[j] += g(d) * x(j, 2, d), a[j] += std::fabs(g(d) * x(j, 2, d));
          dot += p[j] * dp[j];
          edot += p[j] * (rho[j] + g_T + 2 * g_hd) * a[j];
        }
        for (int64_t j = 0; j <= i; ++j) {
          ds[j] = scale * p[j] * (dp[j] - dot);
          eds[j] = scale * p[j] * (rho[j] * std::fabs(dp[j] - dot) + g_hd * a[j] + edot + 3 * u * (std::fabs(dp[j]) + std::fabs(dot)));
        }
        for (int64_t d = 0; d < hd; ++d) {
          double dq = 0, edq = 0;
          for (int64_t j = 0; j <= i; ++j) {
            dq += ds[j] * x(j, 1, d);
            edq += (eds[j] + g_T * std::fabs(ds[j])) * std::fabs(x(j, 1, d));
            r.dqkv[at(j, 1, d)] += ds[j] * x(i, 0, d);  // dK
            r.dqkv_bound[at(j, 1, d)] += (eds[j] + g_T * std::fabs(ds[j])) * std::fabs(x(i, 0, d));
            r.dqkv[at(j, 2, d)] += p[j] * g(d);  // dV
            r.dqkv_bound[at(j, 2, d)] += p[j] * std::fabs(g(d)) * (rho[j] + g_T);
          }
          r.dqkv[at(i, 0, d)] = dq;
          r.dqkv_bound[at(i, 0, d)] = edq;
        }
      }
    }
  return r;
}

}  // namespace

TEST(GptLayers, LinearLayoutsComputeTheSameMap) {
  Linear a("a", 3, 2, WeightLayout::InOut, false);
  Linear b("b", 3, 2, WeightLayout::OutIn, false);
  randomize_params(a, 5);
  for (int i = 0; i < 3; ++i)
    for (int o = 0; o < 2; ++o) b.weight().value.f32()[o * 3 + i] = a.weight().value.f32()[i * 2 + o];
  Tensor x = random_tensor({4, 3}, 6);
  Saved sa, sb;
  Tensor ya = a.forward(x, sa, {}), yb = b.forward(x, sb, {});
  // Two GEMMs (B plain and B transposed) of K = 3 terms: each within gamma_3 sum |x||w| of the exact
  // value, in whatever order the kernel adds them.
  for (int n = 0; n < 4; ++n)
    for (int o = 0; o < 2; ++o) {
      double magnitude = 0;
      for (int i = 0; i < 3; ++i) magnitude += std::fabs(x.f32()[n * 3 + i] * a.weight().value.f32()[i * 2 + o]);
      EXPECT_NEAR(ya.f32()[n * 2 + o], yb.f32()[n * 2 + o], 2 * gamma_n(3) * magnitude);
    }
}

TEST(GptLayers, GeluValues) {
  Gelu layer;
  Tensor x = random_tensor({50}, 9, 2.0f);
  Saved s;
  Tensor y = layer.forward(x, s, {});
  for (int i = 0; i < 50; ++i) {
    const double v = x.f32()[i];
    const double ref = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    // fp32: the tanh argument s within gamma_7 |s| (its five roundings and the two float constants),
    // which moves tanh by at most max(s sech^2 s) = 0.45 times that; libmvec's tanhf; 1 + t and the
    // two products one u each.
    const double t = std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v));
    const double bound = 0.5 * std::fabs(v) * (0.45 * gamma_n(7) + kVecMathError * std::fabs(t) + kFp32Unit * (1 + t)) +
                         2 * kFp32Unit * std::fabs(ref);
    EXPECT_NEAR(y.f32()[i], ref, bound);
  }
}

class AttentionMatchesDirectFormula : public ::testing::TestWithParam<int64_t> {};

// T = 4: one row block; T = 150: three, the last partial.
INSTANTIATE_TEST_SUITE_P(GptLayers, AttentionMatchesDirectFormula, ::testing::Values(4, 150));

TEST_P(AttentionMatchesDirectFormula, ForEveryPosition) {
  const int64_t B = 2, T = GetParam(), D = 6, H = 3, hd = D / H;
  CausalSelfAttention layer(D, H);
  Tensor qkv = random_tensor({B, T, 3 * D}, 11);
  Saved s;
  Tensor y = layer.forward(qkv, s, {});
  const float* p = qkv.f32();
  const AttentionBounds bounds = attention_bounds(p, nullptr, B, T, D, H, T);  // one pass's worst-case error
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> w(T, 0.0);
        double mx = -1e30, sum = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < hd; ++d)
            dot += p[(b * T + i) * 3 * D + h * hd + d] * p[(b * T + j) * 3 * D + D + h * hd + d];
          w[j] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, w[j]);
        }
        for (int64_t j = 0; j <= i; ++j) sum += (w[j] = std::exp(w[j] - mx));
        for (int64_t d = 0; d < hd; ++d) {
          double out = 0;
          for (int64_t j = 0; j <= i; ++j) out += w[j] / sum * p[(b * T + j) * 3 * D + 2 * D + h * hd + d];
          const double bound = bounds.y_bound[static_cast<size_t>((b * T + i) * D + h * hd + d)];
          EXPECT_NEAR(y.f32()[(b * T + i) * D + h * hd + d], out, bound);
        }
      }
}

namespace {
struct AttentionRun {
  std::vector<float> y, dqkv;
};

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); }

// One fp32 forward and backward of a (D, H) attention layer on `kernel` with `tile`.
AttentionRun run_attention(AttentionKernel kernel, int64_t tile, const Tensor& qkv, int64_t D, int64_t H) {
  CausalSelfAttention layer(D, H);
  layer.set_kernel(kernel);
  layer.set_tile(tile);
  Saved s;
  const Tensor y = layer.forward(qkv, s, {});  // (B, T, D)
  EXPECT_EQ(s.stats.size(), kernel == AttentionKernel::Flash ? 1u : 0u) << "the fused kernel keeps lse";
  const Tensor dy = random_tensor(y.shape(), 77, 1.0f, MemCategory::Workspace);
  const Tensor dqkv = layer.backward(dy, s, {});  // (B, T, 3D)
  return {values(y), values(dqkv)};
}

struct FlashCase {
  int64_t T, tile;
};
}  // namespace

class FlashAttentionMatchesMaterialized : public ::testing::TestWithParam<FlashCase> {};

// T = 1024 in whole tiles; 150 and 1000 end in a partial tile (1000 also with a tile that is not a
// power of two).
INSTANTIATE_TEST_SUITE_P(GptLayers, FlashAttentionMatchesMaterialized,
                         ::testing::Values(FlashCase{1024, 64}, FlashCase{150, 64}, FlashCase{1000, 96}),
                         [](const auto& info) {
                           return "T" + std::to_string(info.param.T) + "Tile" + std::to_string(info.param.tile);
                         });

TEST_P(FlashAttentionMatchesMaterialized, OutputAndInputGradient) {
  const int64_t B = 1, H = 2, hd = 16, D = H * hd, T = GetParam().T;
  const Tensor qkv = random_tensor({B, T, 3 * D}, 21);
  const AttentionRun flash = run_attention(AttentionKernel::Flash, GetParam().tile, qkv, D, H);
  const AttentionRun materialized = run_attention(AttentionKernel::Materialized, GetParam().tile, qkv, D, H);
  // Each kernel within attention_bounds of the exact values, element by element: the two differ by
  // at most twice that anywhere (a bug confined to a few rows or one tile shows, as it would not in
  // a norm over all of them).
  const Tensor dy = random_tensor({B, T, D}, 77, 1.0f, MemCategory::Workspace);  // run_attention's
  const AttentionBounds bounds = attention_bounds(qkv.f32(), dy.f32(), B, T, D, H, GetParam().tile);
  const auto worst = [](const std::vector<float>& a, const std::vector<float>& b, const std::vector<double>& bound) {
    double w = 0;  // the largest |a - b| as a fraction of its bound
    for (size_t i = 0; i < a.size(); ++i) w = std::max(w, std::fabs(static_cast<double>(a[i]) - b[i]) / (2 * bound[i] + 1e-30));
    return w;
  };
  EXPECT_LE(worst(flash.y, materialized.y, bounds.y_bound), 1.0);
  EXPECT_LE(worst(flash.dqkv, materialized.dqkv, bounds.dqkv_bound), 1.0);
}

// Each query tile (forward) and each (batch, head) pair (backward) is one thread's, in a fixed
// order: the same bits run to run and on any thread count.
TEST(GptLayers, FlashAttentionIsDeterministicAcrossRunsAndThreadCounts) {
  const int64_t B = 2, H = 3, D = 24, T = 130;
  const Tensor qkv = random_tensor({B, T, 3 * D}, 23);
  const int threads = num_threads();
  set_num_threads(1);
  const AttentionRun one = run_attention(AttentionKernel::Flash, 32, qkv, D, H);
  const AttentionRun again = run_attention(AttentionKernel::Flash, 32, qkv, D, H);
  set_num_threads(3);
  const AttentionRun three = run_attention(AttentionKernel::Flash, 32, qkv, D, H);
  set_num_threads(threads);
  EXPECT_EQ(one.y, again.y);
  EXPECT_EQ(one.dqkv, again.dqkv);
  EXPECT_EQ(one.y, three.y);
  EXPECT_EQ(one.dqkv, three.dqkv);
}

TEST(GptLayers, AttentionTileSetterRejectsUnworkableTiles) {
  CausalSelfAttention layer(8, 2);
  for (const int64_t bad : {int64_t{0}, int64_t{-4}, kFlashMaxTile + 1}) {
    try {
      layer.set_tile(bad);
      ADD_FAILURE() << "tile " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()),
                "attention: tile size " + std::to_string(bad) + " is not in 1.." + std::to_string(kFlashMaxTile));
    }
  }
  EXPECT_EQ(layer.tile(), kFlashDefaultTile) << "a refused tile leaves the setting";
  layer.set_tile(kFlashMaxTile);
  EXPECT_EQ(layer.tile(), kFlashMaxTile);
  Gpt model(tiny_gpt_config());
  EXPECT_THROW(model.set_attention_tile(0), Error);
}

// Auto: the materialising kernel up to 384 positions, the fused one beyond, in every precision.
TEST(GptLayers, AttentionAutoRule) {
  CausalSelfAttention layer(8, 2);
  for (const DType type : {DType::F32, DType::F16, DType::BF16}) {
    EXPECT_EQ(layer.kernel_for(384, type), AttentionKernel::Materialized);
    EXPECT_EQ(layer.kernel_for(385, type), AttentionKernel::Flash);
    if (type != DType::F32) {
      EXPECT_TRUE(layer.computes_in(type));
    }
  }
  layer.set_kernel(AttentionKernel::Materialized);
  EXPECT_EQ(layer.kernel_for(4096, DType::F32), AttentionKernel::Materialized);
  EXPECT_EQ(layer.computes_in(DType::F16), has_half_gemm(DType::F16)) << "fp32 copies where no half units";
  layer.set_kernel(AttentionKernel::Flash);
  EXPECT_EQ(layer.kernel_for(4, DType::F32), AttentionKernel::Flash);
}

TEST(GptLayers, EmbeddingRejectsOutOfRangeTokens) {
  Embedding layer(5, 4, 2);
  Tensor tokens = Tensor::zeros({1, 2}, DType::I32, MemCategory::Activations);
  tokens.i32()[1] = 5;
  Saved s;
  EXPECT_THROW(layer.forward(tokens, s, {}), Error);
  Tensor too_long = Tensor::zeros({1, 5}, DType::I32, MemCategory::Activations);
  EXPECT_THROW(layer.forward(too_long, s, {}), Error);
}

TEST(GptLayers, TiedHeadGradients) {
  Embedding embedding(9, 4, 6);
  randomize_params(embedding, 15);
  Sequential head("lm_head");
  head.add(std::make_unique<LayerNorm>("ln_f", 6, 1e-5f));
  head.add(std::make_unique<Linear>(&embedding.wte(), 6, 9, WeightLayout::OutIn));
  std::vector<Param*> head_params;
  head.collect_params(head_params);
  EXPECT_EQ(head_params.size(), 2u);  // ln_f only: the tied weight belongs to the embedding
  // wte is checked too: the head's contribution to the tied weight's gradient.
  auto entries = grad_check(head, random_tensor({2, 3, 6}, 16), RunContext{}, 1e-2f, 48, {&embedding.wte()});
  ASSERT_EQ(entries.back().what, "wte.weight");
  // Central differences in fp32 with eps = 1e-2: truncation eps^2 |L'''| / 6 (LayerNorm's curvature,
  // ~1/sigma^2 on unit-scale rows: ~1e-5 relative) plus rounding gamma_6 sum |w y| / eps (~1e-5):
  // 1e-2 leaves room for both to be 100x larger, and a wrong or missing term of the gradient is O(1).
  expect_all_below(entries, 1e-2);
}

TEST(GptLayers, CrossEntropyGradientAndIgnoreIndex) {
  const int64_t N = 4, V = 5;
  Tensor logits = random_tensor({N, V}, 17);
  Tensor targets = Tensor::empty({N}, DType::I32, MemCategory::Activations);
  const int32_t t[] = {2, kIgnoreIndex, 0, 4};
  std::copy(t, t + N, targets.i32());
  const double normalizer = 3.0;
  Tensor grad;
  const double loss = loss_forward_backward(LossKind::CrossEntropy, logits, targets, normalizer, grad);
  double expected = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (t[n] == kIgnoreIndex) continue;
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(logits.f32()[n * V + v]);
    expected += std::log(z) - logits.f32()[n * V + t[n]];
  }
  // fp32 error of a loss evaluation: each counted row's exp(z - max) within u |z - max| (the
  // subtraction) + 2u (expf's ulp) relative, so its log-sum-exp within the largest of those; the
  // sums and logs run in double. `loss_error(d)` holds for logits moved by up to d.
  const auto loss_error = [&](double d) {
    double e = 0;
    for (int64_t n = 0; n < N; ++n) {
      if (t[n] == kIgnoreIndex) continue;
      const float* row = logits.f32() + n * V;
      const double range = *std::max_element(row, row + V) - *std::min_element(row, row + V) + 2 * d;
      e += kFp32Unit * range + 2 * kFp32Unit;
    }
    return e / normalizer + 1e-14;  // (the double reference's own error: far below)
  };
  EXPECT_NEAR(loss, expected / normalizer, loss_error(0));
  for (int64_t v = 0; v < V; ++v) EXPECT_EQ(grad.f32()[1 * V + v], 0.0f);
  const float eps = 1e-2f;
  // Central differences: rounding, both evaluations' loss error over 2 eps, plus orig +- eps rounded
  // in fp32 (the step off by up to u |orig + eps|); truncation eps^2 / 6 max |f'''| with f''' of
  // log-sum-exp in one logit p (1 - p) (1 - 2p), at most 1 / (6 sqrt 3), over the normaliser; the
  // analytic gradient's own fp32 error (p / normaliser through six roundings, and the target's -1).
  const double truncation = eps * eps / 6 * (1 / (6 * std::sqrt(3.0))) / normalizer;
  for (int64_t i = 0; i < N * V; ++i) {
    const float orig = logits.f32()[i];
    Tensor g;
    logits.f32()[i] = orig + eps;
    const double plus = loss_forward_backward(LossKind::CrossEntropy, logits, targets, normalizer, g);
    logits.f32()[i] = orig - eps;
    const double minus = loss_forward_backward(LossKind::CrossEntropy, logits, targets, normalizer, g);
    logits.f32()[i] = orig;
    const double ga = std::fabs(grad.f32()[i]);
    const double bound = 2 * loss_error(eps) / (2 * eps) + ga * kFp32Unit * (std::fabs(orig) + eps) / eps + truncation +
                         (ga + 1 / normalizer) * 8 * kFp32Unit;
    EXPECT_NEAR(grad.f32()[i], (plus - minus) / (2 * eps), bound) << i;
  }
}
