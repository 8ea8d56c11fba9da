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
#include "kernels/gemm.h"
#include "kernels/quantized_matrix.h"
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

// What one evaluation of the head may err by, per element, against exact arithmetic on h and wte as
// given (first order; Higham's gamma_n for each sum, any order, any kernel). `dlogit_unit`,
// `dh_unit`: the logits' gradient and d(hidden) stored in a half type. With M_z = |h||wte|^T the
// logits' magnitudes:
//   z = h wte^T off by dz <= gamma_D M_z;
//   p = softmax(z) off by e_r p, e_r = 2 max_v dz + gamma_{V+4} (exp, the V-term sum, the division);
//   each row's loss lse(z) - z_y off by 2 max_v dz + gamma_{V+4} (max |z| + log V + |z_y|), the rows'
//   sum by gamma_N more; dlogits = (p - onehot) / N off by (e_r p + (dlogit_unit + u) |p - onehot|) / N;
//   dh = dlogits wte (V terms), dwte = dlogits^T h (N terms): their inputs' errors carried through the
//   products and gamma_K of the products' magnitudes, and dh_unit of |dh|.
struct HeadBound {
  double loss = 0;
  std::vector<double> dh, dw;  // per element
};
HeadBound head_bound(const Tensor& hidden, const Tensor& wte, const Tensor& targets, double normalizer,
                     double dlogit_unit = 0, double dh_unit = 0) {
  using frugal::testing::gamma_n;
  using frugal::testing::kFp32Unit;
  const int64_t V = wte.dim(0), D = wte.dim(1), N = hidden.numel() / D;
  const std::vector<float> h = values(hidden), w = values(wte);
  HeadBound b;
  b.dh.assign(N * D, 0.0);
  b.dw.assign(V * D, 0.0);
  std::vector<double> z(V), mz(V), dl(V), dl_err(V);
  std::vector<double> dw_mag(V * D, 0.0);
  double loss_terms = 0;
  for (int64_t r = 0; r < N; ++r) {
    const int32_t y = targets.i32()[r];
    if (y == kIgnoreIndex) continue;
    double zmax = -INFINITY, mz_max = 0, sum = 0;
    for (int64_t v = 0; v < V; ++v) {
      z[v] = mz[v] = 0;
      for (int64_t d = 0; d < D; ++d) z[v] += double(h[r * D + d]) * w[v * D + d], mz[v] += std::fabs(double(h[r * D + d]) * w[v * D + d]);
      zmax = std::max(zmax, z[v]);
      mz_max = std::max(mz_max, mz[v]);
    }
    for (int64_t v = 0; v < V; ++v) sum += std::exp(z[v] - zmax);
    const double dz = gamma_n(D) * mz_max;
    const double e = 2 * dz + gamma_n(V + 4);
    const double lse = zmax + std::log(sum);
    loss_terms += lse - z[y];
    b.loss += 2 * dz + gamma_n(V + 4) * (std::fabs(zmax) + std::log(static_cast<double>(V)) + std::fabs(z[y]));
    for (int64_t v = 0; v < V; ++v) {
      const double p = std::exp(z[v] - lse), g = p - (v == y);
      dl[v] = std::fabs(g) / normalizer;
      dl_err[v] = (e * p + (dlogit_unit + kFp32Unit) * std::fabs(g)) / normalizer;
    }
    for (int64_t d = 0; d < D; ++d) {
      double carried = 0, mag = 0;
      for (int64_t v = 0; v < V; ++v) {
        carried += dl_err[v] * std::fabs(w[v * D + d]);
        mag += dl[v] * std::fabs(w[v * D + d]);
      }
      b.dh[r * D + d] = carried + (gamma_n(V) + dh_unit) * mag;  // |dh| <= mag
    }
    for (int64_t v = 0; v < V; ++v)
      for (int64_t d = 0; d < D; ++d) {
        b.dw[v * D + d] += dl_err[v] * std::fabs(h[r * D + d]);
        dw_mag[v * D + d] += dl[v] * std::fabs(h[r * D + d]);
      }
  }
  b.loss = (b.loss + gamma_n(N + 1) * loss_terms) / normalizer;
  for (int64_t i = 0; i < V * D; ++i) b.dw[i] += gamma_n(N) * dw_mag[i];
  return b;
}

// ||sum of the bounds|| / ||want||: the largest relative difference the bounds allow.
double relative_bound(const std::vector<double>& a, const std::vector<double>& b, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) num += (a[i] + b[i]) * (a[i] + b[i]), den += double(want[i]) * want[i];
  return std::sqrt(num / den);
}

}  // namespace

// T = 1024 and T = 1000 (two batch rows: 2000 rows, not a multiple of the 256-row chunk, and the
// last chunk partial), chunks of 13 and 256 rows and one chunk of all rows: the loss, d(hidden) and
// d(wte) equal the unfused kernels', with the same normalisation, within two evaluations' head_bound.
TEST(LmHead, FusedEqualsUnfusedAtLongContexts) {
  const int64_t D = 24, V = 97;
  for (int64_t T : {1024, 1000}) {
    Param wte{"wte.weight", random_tensor({V, D}, 3, 0.5f), {}, true};
    const Tensor h = random_tensor({2, T, D}, 4);
    const Tensor targets = targets_for(2, T, V);
    const double normalizer = static_cast<double>(count_counted_targets(targets.i32(), targets.numel())) + 5;
    const HeadResult want = unfused(wte, h, targets, normalizer);
    const HeadBound bound = head_bound(h, wte.value, targets, normalizer);
    for (int64_t chunk : {int64_t{13}, int64_t{256}, 2 * T}) {
      SCOPED_TRACE("T " + std::to_string(T) + ", chunk " + std::to_string(chunk));
      const HeadResult got = fused(wte, h, targets, normalizer, chunk);
      EXPECT_NEAR(got.loss, want.loss, 2 * bound.loss);
      EXPECT_LE(relative(got.dh, want.dh), relative_bound(bound.dh, bound.dh, want.dh));
      EXPECT_LE(relative(got.dw, want.dw), relative_bound(bound.dw, bound.dw, want.dw));
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
  // Two evaluations' head_bound; the scale, a power of two, multiplies and divides exactly.
  const HeadBound bound = head_bound(h, wte.value, targets, 30.0);
  EXPECT_LE(relative(got.dh, want.dh), relative_bound(bound.dh, bound.dh, want.dh));
  EXPECT_LE(relative(got.dw, want.dw), relative_bound(bound.dw, bound.dw, want.dw));
  wte.trainable = false;
  const int64_t gemms = Linear::weight_gradient_gemms();
  const HeadResult frozen = fused(wte, h, targets, 30.0, 16);
  EXPECT_EQ(Linear::weight_gradient_gemms(), gemms);
  EXPECT_FALSE(wte.grad.defined());
  EXPECT_LE(relative(frozen.dh, want.dh), relative_bound(bound.dh, bound.dh, want.dh));
}

// Half precision: a half wte and half hidden states, on the half units where the CPU has them and
// through vocabulary blocks widened one at a time where it does not (V > the 4096-row block, so
// the blocks' seams are crossed). Loss and gradients are fp32's on the same numbers (the half
// values widened) but for the type's own roundings: dlogits rounded to it on the half units, d(hidden)
// stored in it (head_bound with those units, plus the fp32 evaluation's own bound). Half products are
// exact in fp32 and summed in fp32 there, as OpenBLAS sums the widened values.
TEST(LmHead, HalfWeightsMatchFp32) {
  const int64_t D = 32, V = TiedLmHead::kVocabBlock + 300, T = 64;
  const Tensor wte = random_tensor({V, D}, 7, 0.5f);
  const Tensor h = random_tensor({1, T, D}, 8);
  const Tensor targets = targets_for(1, T, V);
  const auto widened = [](const Tensor& half, MemCategory category) {
    Tensor t = Tensor::empty(half.shape(), DType::F32, category);
    const std::vector<float> v = values(half);
    std::copy(v.begin(), v.end(), t.f32());
    return t;
  };
  for (DType type : {DType::BF16, DType::F16}) {
    SCOPED_TRACE(dtype_name(type));
    Param half{"wte.weight", round_to(wte, type, MemCategory::Params), {}, true};
    const Tensor h_half = round_to(h, type, MemCategory::Activations);
    Param wte32{"wte.weight", widened(half.value, MemCategory::Params), {}, true};
    const Tensor h32 = widened(h_half, MemCategory::Activations);
    const HeadResult want = fused(wte32, h32, targets, 50.0, 16);
    RunContext rc;
    rc.precision = type;
    const HeadResult got = fused(half, h_half, targets, 50.0, 16, rc);
    const double unit = type == DType::BF16 ? frugal::testing::kBf16Unit : frugal::testing::kFp16Unit;
    const HeadBound bound = head_bound(h32, wte32.value, targets, 50.0, unit, unit);
    const HeadBound fp32 = head_bound(h32, wte32.value, targets, 50.0);
    EXPECT_NEAR(got.loss, want.loss, bound.loss + fp32.loss);
    EXPECT_LE(relative(got.dh, want.dh), relative_bound(bound.dh, fp32.dh, want.dh));
    EXPECT_LE(relative(got.dw, want.dw), relative_bound(bound.dw, fp32.dw, want.dw));
    // Logits for generation and evaluation from the same half table.
    const std::vector<float> logits = values(TiedLmHead(&half, D, V).logits(h_half));
    EXPECT_EQ(logits.size(), static_cast<size_t>(T * V));
  }
}

// A frozen head stored in nf4/int8 (--quantize-head): the same loss and d(hidden) as a head holding
// its dequantised values (fp32; rounded to the half type where the tiles go to the half units, as
// dequantize_panel_half rounds them), within two evaluations' head_bound: only the products' split
// into tiles and vocabulary blocks differs (V crosses the 1024-row tiles and the 4096-row blocks). No
// gradient for the head; logits (evaluation, and one row for generation) from fp32 blocks within
// 2 gamma_D of each dot product's magnitude.
TEST(LmHead, QuantizedHeadEqualsItsDequantisedValues) {
  using frugal::testing::gamma_n;
  const int64_t D = 64, V = TiedLmHead::kVocabBlock + 300, T = 48;
  const Tensor w = random_tensor({V, D}, 12, 0.5f);
  const Tensor h = random_tensor({1, T, D}, 13);
  const Tensor targets = targets_for(1, T, V);
  for (QuantFormat format : {QuantFormat::Nf4, QuantFormat::Int8}) {
    const QuantizedMatrix q = QuantizedMatrix::quantize(w.f32(), V, D, format);
    const Tensor deq = Tensor::empty({V, D}, DType::F32, MemCategory::Params);  // (V, D)
    q.dequantize_rows(0, V, deq.f32());
    for (DType type : {DType::F32, DType::BF16}) {
      SCOPED_TRACE(quant_format_name(format) + ", " + dtype_name(type));
      const bool half_units = type != DType::F32 && has_half_gemm(type);
      Tensor plain_value = half_units ? round_to(deq, type, MemCategory::Params) : deq.clone(MemCategory::Params);
      Param plain{"lm_head.weight", std::move(plain_value), {}, false};
      Param stored{"lm_head.weight", deq.clone(MemCategory::Params), {}, false};
      TiedLmHead plain_head(&plain, D, V), quantized_head(&stored, D, V);
      quantized_head.set_quantized_weight(QuantizedMatrix::quantize(w.f32(), V, D, format));
      EXPECT_TRUE(stored.value.is_placeholder());
      RunContext rc;
      rc.precision = type;
      const Tensor hidden = type == DType::F32 ? h : round_to(h, type, MemCategory::Activations);
      Tensor dh_want, dh_got;
      const double want = plain_head.loss_forward_backward(hidden, targets, 40.0, rc, dh_want);
      const double got = quantized_head.loss_forward_backward(hidden, targets, 40.0, rc, dh_got);
      EXPECT_FALSE(stored.grad.defined());
      const double unit = type == DType::F32 ? 0.0 : frugal::testing::kBf16Unit;
      const Tensor h32 = widen(hidden), w32 = widen(plain.value);
      const HeadBound bound = head_bound(h32, w32, targets, 40.0, unit, unit);
      const std::vector<float> want_dh = values(dh_want);
      EXPECT_NEAR(got, want, 2 * bound.loss);
      EXPECT_LE(relative(values(dh_got), want_dh), relative_bound(bound.dh, bound.dh, want_dh));
      if (type != DType::F32) continue;
      for (int64_t rows : {T, int64_t{1}}) {
        const Tensor in = rows == 1 ? random_tensor({1, 1, D}, 14) : h;  // (1, rows, D)
        const std::vector<float> a = values(quantized_head.logits(in)), b = values(plain_head.logits(in));
        ASSERT_EQ(a.size(), static_cast<size_t>(rows * V));
        const std::vector<float> hv = values(in), wv = values(deq);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t v = 0; v < V; ++v) {
            double magnitude = 0;
            for (int64_t d = 0; d < D; ++d) magnitude += std::fabs(double(hv[r * D + d]) * wv[v * D + d]);
            ASSERT_LE(std::fabs(double(a[r * V + v]) - b[r * V + v]), 2 * gamma_n(D) * magnitude) << r << ", " << v;
          }
      }
    }
  }
  // Only a frozen weight may be quantised.
  Param trainable{"lm_head.weight", random_tensor({8, 8}, 15), {}, true};
  TiedLmHead head(&trainable, 8, 8);
  QuantizedMatrix q = QuantizedMatrix::quantize(trainable.value.f32(), 8, 8, QuantFormat::Int8);
  EXPECT_THROW(head.set_quantized_weight(std::move(q)), Error);
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
  // The two share the model's forward (the same code on the same inputs) and differ in the head:
  // chunked logits and the fused loss. head_bound's loss for each, with M_z <= ||h_r|| ||wte_v||
  // (Cauchy-Schwarz) and ||h_r|| = sqrt(D) (ln_f's output at initialisation: unit variance, gamma 1,
  // beta 0), so |z| <= M_z too: per row 2 (2 gamma_D M_z + gamma_{V+4} (2 M_z + log V)), and
  // gamma_N of the loss for the rows' sum.
  const double D = config.n_embd, V = config.vocab_size, N = 16;
  double w_norm = 0;
  ASSERT_EQ(gpt.params()[0]->name, "wte.weight");
  const Tensor& wte = gpt.params()[0]->value;
  for (int64_t v = 0; v < wte.dim(0); ++v) {
    double sq = 0;
    for (int64_t d = 0; d < wte.dim(1); ++d) sq += double(wte.f32()[v * wte.dim(1) + d]) * wte.f32()[v * wte.dim(1) + d];
    w_norm = std::max(w_norm, std::sqrt(sq));
  }
  const double mz = std::sqrt(D) * w_norm;
  const double per_row = 2 * frugal::testing::gamma_n(D) * mz + frugal::testing::gamma_n(V + 4) * (2 * mz + std::log(V));
  EXPECT_NEAR(got, want, 2 * (N * per_row / normalizer + frugal::testing::gamma_n(N + 1) * want));
  EXPECT_LT(ledger.peak()[MemCategory::Workspace], size_t{16 * 300 * 4});  // less than the logits alone
  EXPECT_EQ(gpt.params()[0]->grad.defined(), false);                        // no gradient anywhere
}
