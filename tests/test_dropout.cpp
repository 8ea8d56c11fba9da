// GPT's dropout (embedding sum, residual branches): masks that are never stored, the same under any
// micro-batch split and any checkpointing strategy, off outside training, and the statistics of
// inverted dropout. (Finite differences: the EmbeddingDropout and TransformerBlockDropout rows of
// test_layers.cpp's layer table; bit-identical recomputation: test_checkpointing.cpp.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "fixtures.h"
#include "gradcheck.h"
#include "kernels/attention.h"
#include "kernels/dropout.h"
#include "models/gpt.h"
#include "core/rng.h"
#include "core/threading.h"
#include "core/tensor_init.h"
#include "models/lora_setup.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/transformer_block.h"
#include "train/accumulate.h"
#include "train/data.h"
#include "train/executor.h"
#include "train/planner.h"

using namespace frugal;
using namespace frugal::testing;

namespace {

ModelMaker gpt_with_dropout(double embd, double resid, double attn = 0) {
  GptConfig c = tiny_gpt_config();
  c.embd_pdrop = embd;
  c.attn_pdrop = attn;
  c.resid_pdrop = resid;
  return model_maker<Gpt>(c, 41);
}

}  // namespace

// Over 2^20 ones: the dropped fraction within 3 standard errors of p, the mean kept (inverted
// dropout preserves the expectation) within 3 of its standard errors, every value 0 or 1 / (1 - p).
TEST(Dropout, DropsTheFractionPAndPreservesTheMean) {
  const int64_t n = int64_t{1} << 20;
  for (float p : {0.1f, 0.5f}) {
    const DropoutKey key{7, 11, 3, p};
    std::vector<float> x(n, 1.0f), y(n);
    dropout_apply(key, x.data(), y.data(), n);
    int64_t dropped = 0;
    double sum = 0;
    for (float v : y) {
      dropped += v == 0.0f;
      sum += v;
      ASSERT_TRUE(v == 0.0f || v == 1.0f / (1.0f - p)) << v;
    }
    // The dropped count is binomial: its fraction's standard error is sqrt(p (1 - p) / n); each value
    // is 0 or 1 / (1 - p), of variance p / (1 - p), so the mean's is sqrt(p / ((1 - p) n)). Three of each.
    const double fraction = static_cast<double>(dropped) / n, se = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(fraction, p, 3 * se) << p;
    EXPECT_NEAR(sum / n, 1.0, 3 * std::sqrt(p / ((1 - p) * n))) << p;
  }
}

// The masks are core/rng.h's Philox words, whichever way the kernel computes them (AVX-512 even/odd
// 32-bit products, or the portable loop): element e keeps when word e % 4 of the draw for counter
// e / 4 has its top 24 bits at or above p * 2^24.
TEST(Dropout, MasksAreThePhiloxWords) {
  const DropoutKey key{12345, rng_stream(7, 3, 1), 1000003, 0.3f};
  const uint32_t cut = static_cast<uint32_t>(0.3 * 16777216.0);
  for (int64_t i = 0; i < 5000; i += 7) {
    const uint64_t e = key.first + static_cast<uint64_t>(i);
    const bool keep = (philox4x32(key.seed, key.stream, e / 4)[e % 4] >> 8) >= cut;
    ASSERT_EQ(dropout_keeps(key, i), keep) << i;
  }
  const int64_t n = 4096 + 37;  // whole tensors too (several windows per thread, a partial one)
  std::vector<float> x(n, 2.0f), y(n);
  dropout_apply(key, x.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t e = key.first + static_cast<uint64_t>(i);
    const bool keep = (philox4x32(key.seed, key.stream, e / 4)[e % 4] >> 8) >= cut;
    ASSERT_EQ(y[i], keep ? 2.0f / (1.0f - 0.3f) : 0.0f) << i;
  }
}

// An element's mask depends on its place in the whole batch only: a tensor masked in two parts
// (with their offsets) equals it masked whole; in place equals out of place; dropout_keeps agrees.
TEST(Dropout, MasksDependOnTheGlobalElementIndexOnly) {
  const int64_t n = 1003, split = 517;
  std::vector<float> x(n), whole(n), parts(n);
  for (int64_t i = 0; i < n; ++i) x[i] = 0.01f * static_cast<float>(i) - 3.0f;
  const DropoutKey key{5, 9, 40, 0.3f};
  dropout_apply(key, x.data(), whole.data(), n);
  DropoutKey first = key, second = key;
  second.first += split;
  dropout_apply(first, x.data(), parts.data(), split);
  dropout_apply(second, x.data() + split, parts.data() + split, n - split);
  EXPECT_EQ(parts, whole);
  std::vector<float> in_place = x;
  dropout_apply(key, in_place.data(), in_place.data(), n);
  EXPECT_EQ(in_place, whole);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(dropout_keeps(key, i), whole[i] != 0.0f) << i;
  DropoutKey other = key;
  other.stream += 1;
  std::vector<float> y(n);
  dropout_apply(other, x.data(), y.data(), n);
  EXPECT_NE(y, whole) << "another stream (step, block or site) draws another mask";
}

// K micro-batches equal one micro-batch of the whole batch (to float rounding): each sample's masks
// are keyed by its place in the optimizer batch, not in its micro-batch.
TEST(Dropout, AccumulationEqualsTheWholeBatch) {
  const ModelMaker make = gpt_with_dropout(0.2, 0.3, 0.25);
  const Batch batch = RandomTokens(23, 8, 5).batch(0, 6);
  const GradientSnapshot whole = accumulated_gradients(make, batch, 1);
  // Two summation orders of the same batch gradient (tests/gradcheck.h): the masks are the same, and
  // scale the same elements by the same 1 / (1 - p), so the GPT's reductions are what may differ.
  const GradientSnapshot magnitude = per_sample_magnitudes(make, batch);
  const double n = gpt_reduction_terms(tiny_gpt_config(), 6 * 8);
  for (int64_t accum : {2, 3, 6}) {
    const SumOrderCheck c = against_sum_order_bound(accumulated_gradients(make, batch, accum), whole, magnitude, n);
    EXPECT_LE(c.difference, c.bound) << accum << " micro-batches: " << c.name;
  }
  // and dropout is on: without it the gradients differ by O(p) (p = 0.2 to 0.3 of the elements
  // zeroed), far above the rounding bound above (about 1e-4)
  EXPECT_GT(max_relative_difference(accumulated_gradients(gpt_with_dropout(0, 0), batch, 1), whole), 1e-3);
}

// Evaluation and generation (training = false) see no dropout.
TEST(Dropout, OffOutsideTraining) {
  const Batch batch = RandomTokens(23, 8, 6).batch(0, 3);
  RunContext eval;
  eval.training = false;
  auto with = gpt_with_dropout(0.4, 0.4, 0.4)(), without = gpt_with_dropout(0, 0)();
  EXPECT_EQ(loss_only(*with, batch, 24, eval), loss_only(*without, batch, 24, eval));
  RunContext train;  // training: the masks change the loss
  EXPECT_NE(loss_only(*with, batch, 24, train), loss_only(*without, batch, 24, train));
}

// No masks are stored, and no gradient copy shows in the peak: every category of the plan is the
// same with dropout as without, across checkpointing strategies, precisions, attention kernels and
// LoRA (with and without the adapter's own dropout). (Linear releases its input before it allocates
// dx, so the residual dropout's masked copy of dy is live only in a step below the block's peak.)
TEST(Dropout, PlanWithDropoutEqualsPlanWithout) {
  struct Case {
    std::string checkpoint;
    DType precision;
    double lora_dropout;  // < 0: no LoRA
    AttentionKernel attention;
  };
  const std::vector<Case> cases = {
      {"store-all", DType::F32, -1, AttentionKernel::Auto},    {"sqrt", DType::F32, -1, AttentionKernel::Auto},
      {"memory-poor", DType::F32, -1, AttentionKernel::Flash}, {"store-all", DType::BF16, -1, AttentionKernel::Auto},
      {"sqrt", DType::F16, -1, AttentionKernel::Flash},        {"store-all", DType::F32, 0, AttentionKernel::Auto},
      {"store-all", DType::F32, 0.1, AttentionKernel::Auto},   {"sqrt", DType::BF16, 0, AttentionKernel::Auto},
      {"memory-poor", DType::F32, 0.1, AttentionKernel::Flash},
  };
  for (const Case& c : cases) {
    TrainOptions o;
    o.steps = 2;
    o.micro_batch = 4;
    o.checkpoint = c.checkpoint;
    o.precision = c.precision;
    auto plan = [&](double p) {
      // Width 64 and context 32: below about this size an adapter's fixed per-thread scratch
      // outweighs a block's activations (DESIGN-NOTES, "GPT dropout").
      GptConfig config = tiny_gpt_config();
      config.n_layer = 3;
      config.n_embd = 64;
      config.n_positions = 32;
      config.embd_pdrop = config.attn_pdrop = config.resid_pdrop = p;
      return plan_training_memory(
          [&] {
            auto gpt = std::make_unique<Gpt>(config);
            gpt->set_attention_kernel(c.attention);
            if (c.lora_dropout >= 0) {
              LoraSettings lora;
              lora.config.rank = 4;
              lora.config.dropout = c.lora_dropout;
              lora.targets = {"c_attn", "c_proj", "c_fc"};
              apply_lora(*gpt, lora, 3);
            }
            return std::unique_ptr<Model>(std::move(gpt));
          },
          o);
    };
    const MemoryPlan with = plan(0.2), without = plan(0);
    const std::string name = c.checkpoint + " " + dtype_name(c.precision) + " lora_dropout " +
                             std::to_string(c.lora_dropout) + (c.attention == AttentionKernel::Flash ? " flash" : "");
    EXPECT_EQ(with.peak.total, without.peak.total) << name;
    for (int category = 0; category < kNumMemCategories; ++category)
      if (static_cast<MemCategory>(category) != MemCategory::Workspace) {
        EXPECT_EQ(with.peak.bytes[category], without.peak.bytes[category])
            << name << " " << mem_category_name(static_cast<MemCategory>(category));
      }
    // Workspace's own peak (not the total's) may hold the attention dropout's per-thread scratch:
    // dropped probabilities of a row block (materialising) or a tile's mask and dropped P (fused).
    const int64_t T = 32, tile = 32;
    const size_t scratch = sizeof(float) * per_thread(std::max(kAttentionDropoutRows * T, 2 * tile * tile));
    EXPECT_LE(with.peak[MemCategory::Workspace], without.peak[MemCategory::Workspace] + scratch) << name;
  }
}

// Each layer drops the fraction p of its own elements (within 3 standard errors) and keeps the
// expected value (the ratio of the sums with and without dropout within 3 of its standard errors): the embedding sum, each residual
// branch (the other branch's output weights zeroed so the block's output minus its input is the
// branch alone) and the attention probabilities (values one-hot per key position, so output (i, j)
// is the dropped probability P_ij / (1 - p)).
namespace {
struct DropStatistics {
  int64_t count = 0, dropped = 0;
  double sum_with = 0, sum_without = 0, sum_sq_without = 0;
  void add(float with, float without) {
    if (without == 0.0f) return;  // nothing to drop
    ++count;
    dropped += with == 0.0f;
    sum_with += with;
    sum_without += without;
    sum_sq_without += static_cast<double>(without) * without;
  }
  void expect(double p, const std::string& layer) const {
    ASSERT_GT(count, 60000) << layer;
    const double se = std::sqrt(p * (1 - p) / static_cast<double>(count));  // binomial
    EXPECT_NEAR(static_cast<double>(dropped) / static_cast<double>(count), p, 3 * se) << layer;
    // sum_with = sum_i m_i v_i / (1 - p), m_i kept with probability 1 - p: its standard deviation is
    // sqrt(p / (1 - p) sum_i v_i^2). (The outputs' fp32 rounding, a few 2^-24 of each, is far below.)
    const double ratio_se = std::sqrt(p / (1 - p) * sum_sq_without) / std::fabs(sum_without);
    EXPECT_NEAR(sum_with / sum_without, 1.0, 3 * ratio_se) << layer;
  }
};

// The block's output minus its input with residual dropout `p`, the other branch's projection zeroed.
std::vector<float> branch_output(const std::string& zeroed, float p, const Tensor& x) {
  TransformerBlock block(0, 32, 4, 1e-5f);
  std::vector<Param*> params;
  block.collect_params(params);
  for (Param* param : params) {
    init_normal(param->value, 5, name_stream(param->name), 0.2f);
    // Positive weights for the branch under test: its outputs' mean is far from 0, so the mean
    // ratio measures the scale 1 / (1 - p) rather than noise around zero.
    if (param->name.find("c_proj") != std::string::npos)
      for (int64_t i = 0; i < param->value.numel(); ++i) param->value.f32()[i] = std::fabs(param->value.f32()[i]);
    if (param->name.rfind(zeroed, 0) == 0) param->value.fill_zero();
  }
  block.set_residual_dropout(p);
  RunContext rc;
  Saved saved;
  const Tensor y = block.forward(x, saved, rc);
  std::vector<float> branch(y.numel());
  for (int64_t i = 0; i < y.numel(); ++i) branch[i] = y.f32()[i] - x.f32()[i];
  return branch;
}
}  // namespace

TEST(Dropout, EachLayerDropsTheFractionPOfItsElements) {
  const float p = 0.3f;
  {
    Embedding embedding(50, 64, 64);
    std::vector<Param*> params;
    embedding.collect_params(params);
    for (Param* param : params)
      for (int64_t i = 0; i < param->value.numel(); ++i) param->value.f32()[i] = 0.5f + 0.001f * (i % 97);
    Tensor tokens = Tensor::empty({32, 64}, DType::I32, MemCategory::Activations);  // 131,072 elements
    for (int64_t i = 0; i < tokens.numel(); ++i) tokens.i32()[i] = static_cast<int32_t>((i * 7) % 50);
    RunContext rc;
    Saved s0, s1;
    const Tensor without = embedding.forward(tokens, s0, rc);
    embedding.set_dropout(p);
    const Tensor with = embedding.forward(tokens, s1, rc);
    DropStatistics stats;
    for (int64_t i = 0; i < with.numel(); ++i) stats.add(with.f32()[i], without.f32()[i]);
    stats.expect(p, "embedding");
  }
  Tensor x = Tensor::empty({64, 64, 32}, DType::F32, MemCategory::Activations);  // (B, T, D)
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = std::sin(0.37f * static_cast<float>(i));
  for (const auto& [zeroed, layer] : {std::pair<std::string, std::string>{"h.0.mlp.c_proj", "attention residual"},
                                      {"h.0.attn.c_proj", "MLP residual"}}) {
    const std::vector<float> with = branch_output(zeroed, p, x), without = branch_output(zeroed, 0, x);
    DropStatistics stats;
    for (size_t i = 0; i < with.size(); ++i) stats.add(with[i], without[i]);
    stats.expect(p, layer);
  }
  for (AttentionKernel kernel : {AttentionKernel::Materialized, AttentionKernel::Flash}) {
    const int64_t B = 16, T = 32, H = 8, hd = T, D = H * hd;  // head size T: one value column per key
    Tensor qkv = Tensor::empty({B, T, 3 * D}, DType::F32, MemCategory::Activations);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < 3 * D; ++c) {
          const int64_t part = c / D, j = c % hd;  // q, k or v; column within the head
          const float qk = std::sin(0.1f * static_cast<float>(b * 131 + t * 17 + c));
          qkv.f32()[(b * T + t) * 3 * D + c] = part < 2 ? qk : (j == t ? 1.0f : 0.0f);
        }
    std::vector<float> outputs[2];
    for (float drop : {0.0f, p}) {
      CausalSelfAttention attention(D, H);
      attention.set_kernel(kernel);
      attention.set_dropout(drop);
      Saved saved;
      const Tensor y = attention.forward(qkv, saved, RunContext{});
      outputs[drop > 0].assign(y.f32(), y.f32() + y.numel());
    }
    DropStatistics stats;
    for (size_t i = 0; i < outputs[0].size(); ++i) stats.add(outputs[1][i], outputs[0][i]);
    stats.expect(p, kernel == AttentionKernel::Flash ? "attention probabilities (fused)" : "attention probabilities");
  }
}

// Both attention kernels number the (B, H, T, T) probabilities alike: with the same dropout they
// compute the same output (to float rounding) and the same gradient, which neither would if the
// fused kernel's per-tile masks were not the materialised kernel's.
TEST(Dropout, BothAttentionKernelsDropTheSameProbabilities) {
  const int64_t B = 2, T = 13, D = 12, H = 3;
  Tensor qkv = Tensor::empty({B, T, 3 * D}, DType::F32, MemCategory::Activations);
  Tensor dy = Tensor::empty({B, T, D}, DType::F32, MemCategory::Workspace);
  for (int64_t i = 0; i < qkv.numel(); ++i) qkv.f32()[i] = std::sin(0.7f * static_cast<float>(i));
  for (int64_t i = 0; i < dy.numel(); ++i) dy.f32()[i] = std::cos(0.3f * static_cast<float>(i));
  RunContext rc;
  rc.step = 3;
  rc.sample_offset = 4;
  std::vector<std::vector<float>> outputs, gradients;
  for (AttentionKernel kernel : {AttentionKernel::Materialized, AttentionKernel::Flash}) {
    CausalSelfAttention attention(D, H);
    attention.set_kernel(kernel);
    attention.set_tile(4);
    attention.set_dropout(0.3f);
    Saved saved;
    const Tensor y = attention.forward(qkv, saved, rc);
    const Tensor dqkv = attention.backward(dy, saved, rc);
    outputs.emplace_back(y.f32(), y.f32() + y.numel());
    gradients.emplace_back(dqkv.f32(), dqkv.f32() + dqkv.numel());
  }
  // Each kernel errs by at most gamma_n of the magnitudes its sums add (in double below, from the
  // undropped P: a mask only zeroes terms or scales them by 1 / (1 - p)). n, the roundings on the
  // longest chain: P = exp(s - max) / sum, the score s = scale q.k off by (hd + 1) u of its
  // magnitude scale |q||k| <= sqrt(hd) (|q|, |k| <= 1), the max subtracted (2 more), exp (4 ulp:
  // glibc's vector expf), the T-term sum and the division; the fused kernel's per-tile rescaling
  // (exp and a product, 6 per tile); the T-term product with V and the dropout scale. Backward on
  // that: dP = dY V^T (hd), its mask (1), the T-term row sum P.dP, the subtraction, products and
  // scale (3), and the T-term products with K or Q.
  const double hd = static_cast<double>(D / H), tiles = std::ceil(T / 4.0), keep = 1 - 0.3;
  const double n_p = (hd + 3) * 2 * std::sqrt(hd) + 4 + T + 1;
  const double n_y = n_p + 6 * tiles + T + 1, n_grad = n_y + hd + 1 + T + 3 + T;
  std::vector<double> m_y(outputs[0].size()), m_grad(gradients[0].size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const float* x = qkv.f32() + b * T * 3 * D + h * (D / H);
      const auto at = [&](int64_t t, int64_t part, int64_t d) { return static_cast<double>(x[t * 3 * D + part * D + d]); };
      const auto grad_at = [&](int64_t t, int64_t d) { return std::fabs(dy.f32()[(b * T + t) * D + h * (D / H) + d]); };
      const int64_t hdi = D / H;
      std::vector<double> P(T * T, 0.0), dP(T * T, 0.0), dS(T * T, 0.0);  // causal rows; dP, dS magnitudes
      for (int64_t i = 0; i < T; ++i) {
        double mx = -INFINITY, sum = 0;
        std::vector<double> s(i + 1);
        for (int64_t j = 0; j <= i; ++j) {
          s[j] = 0;
          for (int64_t d = 0; d < hdi; ++d) s[j] += at(i, 0, d) * at(j, 1, d) / std::sqrt(hd);
          mx = std::max(mx, s[j]);
        }
        for (int64_t j = 0; j <= i; ++j) sum += std::exp(s[j] - mx);
        for (int64_t j = 0; j <= i; ++j) {
          P[i * T + j] = std::exp(s[j] - mx) / sum;
          for (int64_t d = 0; d < hdi; ++d) dP[i * T + j] += grad_at(i, d) * std::fabs(at(j, 2, d)) / keep;
        }
        double row = 0;
        for (int64_t j = 0; j <= i; ++j) row += P[i * T + j] * dP[i * T + j];
        for (int64_t j = 0; j <= i; ++j) dS[i * T + j] = P[i * T + j] * (dP[i * T + j] + row) / std::sqrt(hd);
      }
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < hdi; ++d) {
          double y = 0, dq = 0, dk = 0, dv = 0;
          for (int64_t j = 0; j < T; ++j) {
            y += P[t * T + j] * std::fabs(at(j, 2, d)) / keep;  // row t of P
            dq += dS[t * T + j] * std::fabs(at(j, 1, d));
            dk += dS[j * T + t] * std::fabs(at(j, 0, d));        // column t
            dv += P[j * T + t] * grad_at(j, d) / keep;
          }
          const int64_t g = (b * T + t) * 3 * D + h * hdi + d;
          m_y[(b * T + t) * D + h * hdi + d] = y;
          m_grad[g] = dq, m_grad[g + D] = dk, m_grad[g + 2 * D] = dv;
        }
    }
  for (size_t i = 0; i < outputs[0].size(); ++i)
    ASSERT_NEAR(outputs[1][i], outputs[0][i], 2 * gamma_n(n_y) * m_y[i]) << i;
  for (size_t i = 0; i < gradients[0].size(); ++i)
    ASSERT_NEAR(gradients[1][i], gradients[0][i], 2 * gamma_n(n_grad) * m_grad[i]) << i;
  CausalSelfAttention plain(D, H);  // and the dropout does something
  Saved saved;
  const Tensor y = plain.forward(qkv, saved, rc);
  EXPECT_NE(std::vector<float>(y.f32(), y.f32() + y.numel()), outputs[0]);
}
