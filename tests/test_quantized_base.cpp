// A LoRA base stored in nf4 or int8 (issue 19): a Linear holding a quantised weight computes what
// the same Linear with the dequantised weight computes (forward, dx, the adapter's gradients; both
// layouts), and so does a whole GPT whose adapted weights were drawn and quantised one at a time;
// the weight's bytes are the quantised ones; what cannot work is refused.
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "cli_support.h"
#include "core/error.h"
#include "fixtures.h"
#include "gradcheck.h"
#include "models/gpt.h"
#include "models/lora_setup.h"
#include "nn/linear.h"
#include "train/data.h"
#include "train/executor.h"
#include "tolerances.h"

using namespace frugal;
using frugal::testing::CliResult;
using frugal::testing::run_frugal;

namespace {
using frugal::testing::gamma_n;

double norm(const Tensor& t) {
  double s = 0.0;
  for (int64_t i = 0; i < t.numel(); ++i) s += std::pow(static_cast<double>(t.f32()[i]), 2);
  return std::sqrt(s);
}

double relative_difference(const Tensor& a, const Tensor& b) {
  double diff = 0.0, norm = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff += std::pow(static_cast<double>(a.f32()[i]) - b.f32()[i], 2);
    norm += std::pow(static_cast<double>(b.f32()[i]), 2);
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

void fill_values(const Tensor& t, float scale, int salt) {
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = scale * std::sin(0.37f * static_cast<float>(i + salt));
}

// The weight as the quantised products see it.
void dequantize_into(const QuantizedMatrix& q, const Tensor& w) { q.dequantize_rows(0, q.rows(), w.f32()); }

void take_absolute_values(const Tensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = std::fabs(t.f32()[i]);
}

// Two fp32 evaluations of the same sums (the quantised layer multiplies tile by tile and adds the
// adapter's part afterwards; the plain one folds scale B A into its weight first) each err by at most
// gamma_n times the sum of the terms' magnitudes, n the longest chain of roundings (Higham; any
// order, any kernel, FMA or not). Over a tensor: ||a - b|| <= 2 gamma_n ||M||, M the magnitudes.
double gemm_bound(double n, const Tensor& magnitudes, const Tensor& reference) {
  return 2 * gamma_n(n) * norm(magnitudes) / norm(reference);
}
}  // namespace

TEST(QuantizedBase, LinearEqualsTheLinearWithItsDequantizedWeight) {
  LoraConfig config;
  config.rank = 3;
  config.alpha = 6;
  for (WeightLayout layout : {WeightLayout::InOut, WeightLayout::OutIn}) {
    for (QuantFormat format : {QuantFormat::Nf4, QuantFormat::Int8}) {
      Linear quantized("q", 24, 40, layout, true), plain("p", 24, 40, layout, true);
      fill_values(plain.weight().value, 0.3f, 1);
      fill_values(plain.bias()->value, 0.1f, 2);
      quantized.bias()->value.copy_from(plain.bias()->value);
      const Tensor& w = plain.weight().value;
      quantized.set_quantized_weight(QuantizedMatrix::quantize(w.f32(), w.dim(0), w.dim(1), format));
      dequantize_into(*quantized.quantized_weight(), plain.weight().value);
      plain.weight().trainable = false;
      EXPECT_TRUE(quantized.weight().value.is_placeholder());
      for (Linear* l : {&quantized, &plain}) {
        LoraAdapter& a = l->attach_lora("l", config, 5);  // (the same A: drawn from the name and seed)
        fill_values(a.b().value, 0.05f, 3);  // (B starts at zero: give dA something to see)
      }
      const Tensor x = Tensor::empty({2, 5, 24}, DType::F32, MemCategory::Activations);
      const Tensor dy = Tensor::empty({2, 5, 40}, DType::F32, MemCategory::Workspace);
      fill_values(x, 1.0f, 4);
      fill_values(dy, 1.0f, 5);
      // M, the magnitudes each output sums: the plain layer run on |x|, |W|, |b|, |A|, |B| and |dy|
      // (every output is a sum of products of these, so the run adds the terms' magnitudes).
      Linear magnitude("m", 24, 40, layout, true);
      magnitude.weight().value.copy_from(plain.weight().value);
      magnitude.bias()->value.copy_from(plain.bias()->value);
      magnitude.weight().trainable = false;
      LoraAdapter& ma = magnitude.attach_lora("l", config, 5);
      fill_values(ma.b().value, 0.05f, 3);
      const Tensor ax = Tensor::empty(x.shape(), DType::F32, MemCategory::Activations);
      const Tensor ady = Tensor::empty(dy.shape(), DType::F32, MemCategory::Workspace);
      ax.copy_from(x);
      ady.copy_from(dy);
      for (const Tensor& t : {magnitude.weight().value, magnitude.bias()->value, ma.a().value, ma.b().value, ax, ady})
        take_absolute_values(t);
      RunContext rc;
      Saved sq, sp, sm;
      const Tensor m_y = magnitude.forward(ax, sm, rc), m_dx = magnitude.backward(ady, sm, rc);
      // Longest chains of roundings, K = 24 in, N = 40 out, r = 3, 10 rows: y: x A^T (K), scale and B
      // (r + 2); the folded weight W + scale B A (r + 2) then x W' + b (K + 1). dx: dy B (N), scale
      // and A (r + 2), + dy W^T; or dy W'^T (N) after the fold (r + 2). dA, dB: the same products in
      // both layers (h = x A^T or g = dy B, K or N terms; the 10 rows, scale and accumulation; the
      // threads' partial sums added).
      const double K = 24, N = 40, r = 3, rows = 10, threads = omp_get_max_threads();
      const Tensor y = plain.forward(x, sp, rc), dx = plain.backward(dy, sp, rc);
      EXPECT_LE(relative_difference(quantized.forward(x, sq, rc), y), gemm_bound(K + r + 2, m_y, y));
      EXPECT_LE(relative_difference(quantized.backward(dy, sq, rc), dx), gemm_bound(N + r + 2, m_dx, dx));
      const double n_grad = std::max(K, N) + rows + threads + 2;
      const Tensor& da = plain.lora()->a().grad;
      const Tensor& db = plain.lora()->b().grad;
      EXPECT_LE(relative_difference(quantized.lora()->a().grad, da), gemm_bound(n_grad, ma.a().grad, da));
      EXPECT_LE(relative_difference(quantized.lora()->b().grad, db), gemm_bound(n_grad, ma.b().grad, db));
      EXPECT_FALSE(quantized.weight().grad.defined()) << "a quantised base takes no gradient";
      EXPECT_THROW(quantized.merge_lora(), Error);
    }
  }
}

// The whole GPT: adapted weights drawn one at a time (init_param) and quantised as the CLI builds
// them, against a model with init_weights' values quantised and dequantised in place.
TEST(QuantizedBase, GptDrawnOneWeightAtATimeEqualsTheDequantizedModel) {
  const GptConfig c = frugal::testing::tiny_gpt_config();
  const std::vector<std::string> targets = {"c_attn", "c_proj", "c_fc"};
  LoraSettings s;
  s.config.rank = 2;
  s.targets = targets;
  Gpt quantized(c);
  quantized.init_weights(1);
  const std::vector<std::string> adapted = adapted_weight_names(quantized, targets);
  for (const auto& [name, linear] : quantized.adaptable_linears())  // as build_in_storage leaves them
    if (std::find(adapted.begin(), adapted.end(), linear->weight().name) != adapted.end())
      linear->weight().value = Tensor::placeholder(linear->weight().value.shape(), DType::F32);
  quantize_adapted_weights(quantized, adapted, QuantFormat::Nf4,
                           [&](size_t index, const Tensor& scratch) { quantized.init_param(index, scratch, 1); });
  apply_lora(quantized, s, 7);
  const ModelMaker make_plain = [&] {
    auto plain = std::make_unique<Gpt>(c);
    plain->init_weights(1);
    for (const auto& [name, linear] : plain->adaptable_linears()) {
      const Tensor& w = linear->weight().value;
      if (std::find(adapted.begin(), adapted.end(), linear->weight().name) == adapted.end()) continue;
      dequantize_into(QuantizedMatrix::quantize(w.f32(), w.dim(0), w.dim(1), QuantFormat::Nf4), w);
    }
    apply_lora(*plain, s, 7);
    return std::unique_ptr<Model>(std::move(plain));
  };
  const std::unique_ptr<Model> plain = make_plain();
  RandomTokens data(c.vocab_size, c.n_positions, 5);
  const Batch batch = data.batch(0, 3);
  const double rows = 3 * 8;
  RunContext rc;
  const PassResult q = forward_backward(quantized, batch, rows, rc, nullptr);
  const PassResult p = forward_backward(*plain, batch, rows, rc, nullptr);
  // The two models add the same products; only the adapted layers' GEMMs are blocked differently
  // (tile by tile against whole), every other operation is the same code on the same inputs. To first
  // order each such GEMM's outputs differ by at most 2 gamma_K of their magnitudes, and these add up
  // along the path: forward, K = E (c_attn, attn.c_proj, c_fc) and 4E (mlp.c_proj) in each block. The
  // loss, a mean of positive per-token terms, cancels nothing that would amplify them.
  const double E = static_cast<double>(c.n_embd), L = static_cast<double>(c.n_layer);
  const double forward_terms = L * (3 * E + 4 * E);
  EXPECT_NEAR(q.loss, p.loss, 2 * gamma_n(forward_terms) * p.loss);
  // dB: those and the backward's dx products (K = 3E, E, 4E, E per block), then the rows summed,
  // against the magnitudes of the samples' own gradients (frugal::testing::against_sum_order_bound).
  const GradientSnapshot magnitude = frugal::testing::per_sample_magnitudes(make_plain, batch);
  const std::vector<LoraAdapter*> qa = lora_adapters(quantized), pa = lora_adapters(*plain);
  ASSERT_EQ(qa.size(), 8u);  // c_attn, attn.c_proj, c_fc, mlp.c_proj in 2 blocks
  GradientSnapshot qb, pb;
  for (size_t i = 0; i < qa.size(); ++i) {
    const Tensor& gq = qa[i]->b().grad;
    const Tensor& gp = pa[i]->b().grad;
    qb[qa[i]->b().name].assign(gq.f32(), gq.f32() + gq.numel());
    pb[pa[i]->b().name].assign(gp.f32(), gp.f32() + gp.numel());
  }
  const frugal::testing::SumOrderCheck b_grads =
      frugal::testing::against_sum_order_bound(qb, pb, magnitude, forward_terms + L * (3 * E + E + 4 * E + E) + rows);
  EXPECT_LE(b_grads.difference, b_grads.bound) << b_grads.name;
}

TEST(QuantizedBase, CliQuantisesTheBasePlansItsBytesAndRefusesWhatCannotWork) {
  const auto params_and_plan = [](const std::string& base) {
    const std::filesystem::path dir = frugal::testing::scratch("quantized_base");
    const CliResult r = run_frugal("train --arch gpt --layers 2 --dim 64 --heads 2 --ctx 32 --vocab 256 --data synthetic "
                                   "--steps 2 --micro-batch 2 --lora-rank 4 --lora-targets c_attn,c_proj,c_fc "
                                   "--base-precision " + base + " --summary " + (dir / "s.json").string());
    EXPECT_EQ(r.status, 0) << r.err;
    const nlohmann::json s = nlohmann::json::parse(frugal::testing::slurp(dir / "s.json"));
    EXPECT_EQ(s["memory"]["total"], s["predicted_memory"]["total"]) << base << ": planned = measured";
    return s["memory"]["params"].get<double>();
  };
  const double fp32 = params_and_plan("fp32"), bf16 = params_and_plan("bf16");
  const double nf4 = params_and_plan("nf4"), int8 = params_and_plan("int8");
  // The adapted weights are 3/4 of this model's 0.5 MB: nf4 keeps 0.129 of their bytes, int8 0.266.
  EXPECT_LT(nf4, int8);
  EXPECT_LT(int8, bf16);
  EXPECT_LT(nf4, 0.4 * fp32);
  // An adapter trained on an nf4 base, sampled on that base (the adapter kept beside it, unmerged).
  const std::filesystem::path dir = frugal::testing::scratch("quantized_generate");
  const std::string base = (dir / "base").string(), adapter = (dir / "adapter").string();
  CliResult r = run_frugal("train --arch gpt --layers 2 --dim 64 --heads 2 --ctx 32 --steps 2 --save " + base);
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_frugal("train --model " + base + " --steps 2 --lora-rank 2 --base-precision nf4 --save-adapter " + adapter);
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_frugal("generate --model " + base + " --adapter " + adapter + " --base-precision nf4 --tokens 8");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_GE(r.out.size(), 8u);
  frugal::testing::expect_one_line_error(run_frugal("generate --model " + base + " --base-precision nf4"), "--adapter");
  frugal::testing::expect_one_line_error(
      run_frugal("train --arch gpt --steps 1 --lora-rank 2 --base-precision nf4 --save /tmp/never"), "--save-adapter");
  frugal::testing::expect_one_line_error(
      run_frugal("train --arch mlp --data synthetic --steps 1 --lora-rank 2 --lora-targets 0 --base-precision nf4"), "GPT");
  frugal::testing::expect_one_line_error(
      run_frugal("train --arch gpt --dim 12 --heads 2 --steps 1 --lora-rank 2 --base-precision int8"), "multiple");
}
