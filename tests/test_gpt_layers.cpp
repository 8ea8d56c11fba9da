// GPT-2's layers beyond tests/test_layers.cpp's table: the attention kernel against a direct
// implementation, the fused attention kernel against the materialising one, GELU's values, the two weight layouts, the tied head's gradient into wte, and the
// loss by finite differences.
#include <gtest/gtest.h>

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

using namespace frugal;
using namespace frugal::testing;

namespace {
void expect_all_below(const std::vector<GradCheckEntry>& entries, double tol) {
  ASSERT_FALSE(entries.empty());
  for (const auto& e : entries) EXPECT_LE(e.rel_error, tol) << e.what;
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
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(ya.f32()[i], yb.f32()[i]);
}

TEST(GptLayers, GeluValues) {
  Gelu layer;
  Tensor x = random_tensor({50}, 9, 2.0f);
  Saved s;
  Tensor y = layer.forward(x, s, {});
  for (int i = 0; i < 50; ++i) {
    const double v = x.f32()[i];
    const double ref = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(y.f32()[i], ref, 1e-6);
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
          EXPECT_NEAR(y.f32()[(b * T + i) * D + h * hd + d], out, 1e-5);
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

double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
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
  EXPECT_LE(relative_difference(flash.y, materialized.y), 1e-5);
  EXPECT_LE(relative_difference(flash.dqkv, materialized.dqkv), 1e-5);
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
  EXPECT_NEAR(loss, expected / normalizer, 1e-6);
  for (int64_t v = 0; v < V; ++v) EXPECT_EQ(grad.f32()[1 * V + v], 0.0f);
  const float eps = 1e-2f;
  for (int64_t i = 0; i < N * V; ++i) {
    const float orig = logits.f32()[i];
    Tensor g;
    logits.f32()[i] = orig + eps;
    const double plus = loss_forward_backward(LossKind::CrossEntropy, logits, targets, normalizer, g);
    logits.f32()[i] = orig - eps;
    const double minus = loss_forward_backward(LossKind::CrossEntropy, logits, targets, normalizer, g);
    logits.f32()[i] = orig;
    EXPECT_NEAR(grad.f32()[i], (plus - minus) / (2 * eps), 2e-4) << i;
  }
}
