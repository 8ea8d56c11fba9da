// A LoRA base stored in nf4 or int8 (issue 19): a Linear holding a quantised weight computes what
// the same Linear with the dequantised weight computes (forward, dx, the adapter's gradients; both
// layouts), and so does a whole GPT whose adapted weights were drawn and quantised one at a time;
// the weight's bytes are the quantised ones; what cannot work is refused.
#include <gtest/gtest.h>

#include <cmath>

#include "cli_support.h"
#include "core/error.h"
#include "fixtures.h"
#include "models/gpt.h"
#include "models/lora_setup.h"
#include "nn/linear.h"
#include "train/data.h"
#include "train/executor.h"

using namespace frugal;
using frugal::testing::CliResult;
using frugal::testing::run_frugal;

namespace {
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
      RunContext rc;
      Saved sq, sp;
      EXPECT_LE(relative_difference(quantized.forward(x, sq, rc), plain.forward(x, sp, rc)), 1e-6);
      EXPECT_LE(relative_difference(quantized.backward(dy, sq, rc), plain.backward(dy, sp, rc)), 1e-6);
      EXPECT_LE(relative_difference(quantized.lora()->a().grad, plain.lora()->a().grad), 1e-6);
      EXPECT_LE(relative_difference(quantized.lora()->b().grad, plain.lora()->b().grad), 1e-6);
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
  Gpt quantized(c), plain(c);
  quantized.init_weights(1);
  plain.init_weights(1);
  const std::vector<std::string> adapted = adapted_weight_names(quantized, targets);
  for (const auto& [name, linear] : quantized.adaptable_linears())  // as build_in_storage leaves them
    if (std::find(adapted.begin(), adapted.end(), linear->weight().name) != adapted.end())
      linear->weight().value = Tensor::placeholder(linear->weight().value.shape(), DType::F32);
  quantize_adapted_weights(quantized, adapted, QuantFormat::Nf4,
                           [&](size_t index, const Tensor& scratch) { quantized.init_param(index, scratch, 1); });
  for (const auto& [name, linear] : plain.adaptable_linears()) {
    const Tensor& w = linear->weight().value;
    if (std::find(adapted.begin(), adapted.end(), linear->weight().name) == adapted.end()) continue;
    dequantize_into(QuantizedMatrix::quantize(w.f32(), w.dim(0), w.dim(1), QuantFormat::Nf4), w);
  }
  LoraSettings s;
  s.config.rank = 2;
  s.targets = targets;
  apply_lora(quantized, s, 7);
  apply_lora(plain, s, 7);
  RandomTokens data(c.vocab_size, c.n_positions, 5);
  const Batch batch = data.batch(0, 3);
  RunContext rc;
  const PassResult q = forward_backward(quantized, batch, 24.0, rc, nullptr);
  const PassResult p = forward_backward(plain, batch, 24.0, rc, nullptr);
  EXPECT_NEAR(q.loss, p.loss, 1e-6 * p.loss);
  const std::vector<LoraAdapter*> qa = lora_adapters(quantized), pa = lora_adapters(plain);
  ASSERT_EQ(qa.size(), 8u);  // c_attn, attn.c_proj, c_fc, mlp.c_proj in 2 blocks
  for (size_t i = 0; i < qa.size(); ++i) EXPECT_LE(relative_difference(qa[i]->b().grad, pa[i]->b().grad), 1e-5) << i;
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
