// The tied LM head fused with cross-entropy (nn/lm_head.h, issue 15): against the unfused
// composition it replaces (a D -> V linear on wte, the softmax cross-entropy over the whole (N, V)
// logits, the linear's backward) at T = 1024 and at a row count that is not a multiple of the
// chunk, for any chunk size, with ignored targets; in half precision; its one-line errors; the
// evaluation loss without logits.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/ledger.h"
#include "fixtures.h"
#include "gradcheck.h"
#include "kernels/convert.h"
#include "kernels/cross_entropy.h"
#include "nn/lm_head.h"
#include "nn/linear.h"
#include "train/executor.h"
#include "train/loss.h"

using namespace frugal;
using frugal::testing::random_tensor;

namespace {

struct HeadResult {
  double loss = 0;
  std::vector<float> dh, dw;
};

std::vector<float> values(const Tensor& t) {
  if (!t.defined()) return {};
  const Tensor w = widen(t);
  return std::vector<float>(w.f32(), w.f32() + w.numel());
}

double relative(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

// Targets in 0..V-1 with every seventh row ignored.
Tensor targets_for(int64_t B, int64_t T, int64_t V) {
  Tensor t = Tensor::empty({B, T}, DType::I32, MemCategory::Activations);
  for (int64_t i = 0; i < B * T; ++i) t.i32()[i] = i % 7 == 3 ? kIgnoreIndex : static_cast<int32_t>((i * 37 + 11) % V);
  return t;
}

// What the fused head replaces: logits = h wte^T through a Linear, the unfused loss, its backward.
HeadResult unfused(Param& wte, const Tensor& h, const Tensor& targets, double normalizer) {
  Linear head(&wte, h.dim(-1), wte.value.dim(0), WeightLayout::OutIn);
  Saved saved;
  wte.grad = Tensor();
  const Tensor logits = head.forward(h, saved, RunContext{});
  Tensor dlogits;
  HeadResult r;
  r.loss = loss_forward_backward(LossKind::CrossEntropy, logits, targets, normalizer, dlogits);
  r.dh = values(head.backward(dlogits, saved, RunContext{}));
  r.dw = values(wte.grad);
  return r;
}

HeadResult fused(Param& wte, const Tensor& h, const Tensor& targets, double normalizer, int64_t chunk,
                 const RunContext& rc = {}) {
  TiedLmHead head(&wte, h.dim(-1), wte.value.dim(0));
  head.set_chunk_rows(chunk);
  wte.grad = Tensor();
  Tensor dh;
  HeadResult r;
  r.loss = head.loss_forward_backward(h, targets, normalizer, rc, dh);
  r.dh = values(dh);
  if (rc.loss_scale != 1.0f)
    for (float& v : r.dh) v /= rc.loss_scale;
  r.dw = values(wte.grad);
  if (rc.loss_scale != 1.0f)
    for (float& v : r.dw) v /= rc.loss_scale;
  return r;
}

}  // namespace

// T = 1024 and T = 1000 (two batch rows: 2000 rows, not a multiple of the 256-row chunk, and the
// last chunk partial), chunks of 13 and 256 rows and one chunk of all rows: the loss, d(hidden) and
// d(wte) equal the unfused kernels' to 1e-5 relative, with the same normalisation.
TEST(LmHead, FusedEqualsUnfusedAtLongContexts) {
  const int64_t D = 24, V = 97;
  for (int64_t T : {1024, 1000}) {
    Param wte{"wte.weight", random_tensor({V, D}, 3, 0.5f), {}, true};
    const Tensor h = random_tensor({2, T, D}, 4);
    const Tensor targets = targets_for(2, T, V);
    const double normalizer = static_cast<double>(count_counted_targets(targets.i32(), targets.numel())) + 5;
    const HeadResult want = unfused(wte, h, targets, normalizer);
    for (int64_t chunk : {int64_t{13}, int64_t{256}, 2 * T}) {
      SCOPED_TRACE("T " + std::to_string(T) + ", chunk " + std::to_string(chunk));
      const HeadResult got = fused(wte, h, targets, normalizer, chunk);
      EXPECT_NEAR(got.loss, want.loss, 1e-5 * want.loss);
      EXPECT_LE(relative(got.dh, want.dh), 1e-5);
      EXPECT_LE(relative(got.dw, want.dw), 1e-5);
    }
  }
}

// A frozen wte (LoRA): no gradient buffer and no weight-gradient GEMM; d(hidden) as before. The
// loss scale multiplies both gradients.
TEST(LmHead, FrozenWeightAndLossScale) {
  const int64_t D = 16, V = 50, T = 40;
  Param wte{"wte.weight", random_tensor({V, D}, 5, 0.5f), {}, true};
  const Tensor h = random_tensor({1, T, D}, 6);
  const Tensor targets = targets_for(1, T, V);
  const HeadResult want = unfused(wte, h, targets, 30.0);
  RunContext scaled;
  scaled.loss_scale = 1024.0f;
  const HeadResult got = fused(wte, h, targets, 30.0, 16, scaled);
  EXPECT_LE(relative(got.dh, want.dh), 1e-6);
  EXPECT_LE(relative(got.dw, want.dw), 1e-6);
  wte.trainable = false;
  const int64_t gemms = Linear::weight_gradient_gemms();
  const HeadResult frozen = fused(wte, h, targets, 30.0, 16);
  EXPECT_EQ(Linear::weight_gradient_gemms(), gemms);
  EXPECT_FALSE(wte.grad.defined());
  EXPECT_LE(relative(frozen.dh, want.dh), 1e-6);
}

// Half precision: a half wte and half hidden states, on the half units where the CPU has them and
// through vocabulary blocks widened one at a time where it does not (V > the 4096-row block, so
// the blocks' seams are crossed). Loss and gradients within the type's rounding of fp32's.
TEST(LmHead, HalfWeightsMatchFp32) {
  const int64_t D = 32, V = TiedLmHead::kVocabBlock + 300, T = 64;
  Param wte{"wte.weight", random_tensor({V, D}, 7, 0.5f), {}, true};
  const Tensor h = random_tensor({1, T, D}, 8);
  const Tensor targets = targets_for(1, T, V);
  const HeadResult want = fused(wte, h, targets, 50.0, 16);
  for (DType type : {DType::BF16, DType::F16}) {
    SCOPED_TRACE(dtype_name(type));
    Param half{"wte.weight", round_to(wte.value, type, MemCategory::Params), {}, true};
    const Tensor h_half = round_to(h, type, MemCategory::Activations);
    RunContext rc;
    rc.precision = type;
    const HeadResult got = fused(half, h_half, targets, 50.0, 16, rc);
    const double tol = type == DType::BF16 ? 3e-2 : 4e-3;
    EXPECT_NEAR(got.loss, want.loss, tol * want.loss);
    EXPECT_LE(relative(got.dh, want.dh), tol);
    EXPECT_LE(relative(got.dw, want.dw), tol);
    // Logits for generation and evaluation from the same half table.
    const std::vector<float> logits = values(TiedLmHead(&half, D, V).logits(h_half));
    EXPECT_EQ(logits.size(), static_cast<size_t>(T * V));
  }
}

TEST(LmHead, BadInputsGiveOneLineErrors) {
  Param wte{"wte.weight", random_tensor({10, 4}, 9), {}, true};
  TiedLmHead head(&wte, 4, 10);
  EXPECT_THROW(head.set_chunk_rows(0), Error);
  EXPECT_THROW(head.set_chunk_rows(-3), Error);
  const Tensor h = random_tensor({1, 3, 4}, 10);
  Tensor targets = targets_for(1, 3, 10);
  targets.i32()[1] = 10;  // a token id past the vocabulary
  Tensor dh;
  try {
    head.loss_forward_backward(h, targets, 3.0, RunContext{}, dh);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab_size 10"), std::string::npos) << e.what();
  }
  EXPECT_THROW(head.loss_forward_backward(random_tensor({1, 3, 5}, 11), targets_for(1, 3, 10), 3.0, {}, dh), Error);
}

// Evaluation's loss (loss_only) through the fused head equals the loss of the full logits, and
// holds one chunk of logits, never the (B, T, V) of them.
TEST(LmHead, EvaluationLossNeverHoldsTheLogits) {
  GptConfig config = frugal::testing::tiny_gpt_config();
  config.vocab_size = 300;
  Gpt gpt(config);
  gpt.init_weights(12);
  gpt.lm_head()->set_chunk_rows(4);
  Batch batch;
  batch.inputs = Tensor::empty({2, 8}, DType::I32, MemCategory::Activations);
  for (int64_t i = 0; i < 16; ++i) batch.inputs.i32()[i] = static_cast<int32_t>((i * 53 + 7) % 300);
  batch.targets = targets_for(2, 8, 300);
  const double normalizer = static_cast<double>(count_counted_targets(batch.targets.i32(), batch.targets.numel()));
  RunContext rc;
  rc.training = false;
  Tensor discarded;
  const double want = loss_forward_backward(LossKind::CrossEntropy, forward_only(gpt, batch.inputs, rc), batch.targets,
                                            normalizer, discarded);
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  const double got = loss_only(gpt, batch, normalizer, rc);
  EXPECT_NEAR(got, want, 1e-6 * want);
  EXPECT_LT(ledger.peak()[MemCategory::Workspace], size_t{16 * 300 * 4});  // less than the logits alone
  EXPECT_EQ(gpt.params()[0]->grad.defined(), false);                        // no gradient anywhere
}
