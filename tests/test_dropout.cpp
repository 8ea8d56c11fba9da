// GPT's dropout (embedding sum, residual branches): masks that are never stored, the same under any
// micro-batch split and any checkpointing strategy, off outside training, and the statistics of
// inverted dropout. (Finite differences: the EmbeddingDropout and TransformerBlockDropout rows of
// test_layers.cpp's layer table; bit-identical recomputation: test_checkpointing.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "fixtures.h"
#include "kernels/dropout.h"
#include "models/gpt.h"
#include "nn/attention.h"
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
// dropout preserves the expectation) within 1%, every value 0 or 1 / (1 - p).
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
    const double fraction = static_cast<double>(dropped) / n, se = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(fraction, p, 3 * se) << p;
    EXPECT_NEAR(sum / n, 1.0, 0.01) << p;
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
  for (int64_t accum : {2, 3, 6}) EXPECT_LT(max_relative_difference(accumulated_gradients(make, batch, accum), whole), 1e-5);
  // and dropout is on: without it the gradients differ
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

// No masks are stored: the planned activations are the same with and without dropout; backward
// holds one masked fp32 copy of a block's gradient at a time (B x T x D) on top.
TEST(Dropout, StoresNoMasks) {
  TrainOptions o;
  o.steps = 2;
  o.micro_batch = 4;
  for (const std::string strategy : {"store-all", "sqrt"}) {
    o.checkpoint = strategy;
    const MemoryPlan with = plan_training_memory(gpt_with_dropout(0.1, 0.1, 0.1), o);
    const MemoryPlan without = plan_training_memory(gpt_with_dropout(0, 0), o);
    EXPECT_EQ(with.peak[MemCategory::Activations], without.peak[MemCategory::Activations]) << strategy;
    const size_t gradient_copy = 4 * 8 * 16 * sizeof(float);  // B x T x D fp32
    EXPECT_LE(with.peak.total, without.peak.total + gradient_copy) << strategy;
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
  for (size_t i = 0; i < outputs[0].size(); ++i) ASSERT_NEAR(outputs[1][i], outputs[0][i], 1e-5) << i;
  for (size_t i = 0; i < gradients[0].size(); ++i) ASSERT_NEAR(gradients[1][i], gradients[0][i], 1e-5) << i;
  CausalSelfAttention plain(D, H);  // and the dropout does something
  Saved saved;
  const Tensor y = plain.forward(qkv, saved, rc);
  EXPECT_NE(std::vector<float>(y.f32(), y.f32() + y.numel()), outputs[0]);
}
