// LoRA: the adapter's gradients by finite differences, the parameter and memory arithmetic
// (2rn instead of n^2; 12 bytes of gradient + AdamW state per trainable number, none for frozen
// ones), no weight-gradient GEMM for frozen weights, merge = adapter, merge then unmerge = W,
// adapters through files, recomputation with LoRA dropout, and bad adapters.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/threading.h"
#include "fixtures.h"
#include "gradcheck.h"
#include "models/gpt.h"
#include "models/lora_setup.h"
#include "models/model_io.h"
#include "train/accumulate.h"
#include "train/data.h"
#include "train/gradient_snapshot.h"
#include "train/schedule.h"
#include "train/trainer.h"

using namespace frugal;
using namespace frugal::testing;

namespace {
LoraSettings all_four(int64_t rank, double alpha = 16, double dropout = 0) {
  LoraSettings s;
  s.config.rank = rank;
  s.config.alpha = alpha;
  s.config.dropout = dropout;
  s.targets = {"c_attn", "c_proj", "c_fc"};  // c_proj matches attn.c_proj and mlp.c_proj
  return s;
}

// Non-zero B so that every path carries gradient.
void randomize_adapters(Model& model, uint64_t seed) {
  for (LoraAdapter* a : lora_adapters(model)) {
    init_normal(a->a().value, seed, name_stream(a->a().name), 0.3f);
    init_normal(a->b().value, seed, name_stream(a->b().name), 0.3f);
  }
}

double loss_of(Model& model, const Batch& batch) {
  for (Param* p : model.params())
    if (p->grad.defined()) p->grad.fill_zero();
  return accumulate_gradients(model, batch, 1, RunContext{}).loss;
}
}  // namespace

// The adapter's products run row-chunked across threads (kernels/lora.cpp) and, without dropout,
// fold B A into a copy of W: over several chunks and with 1 and 2 threads, y, dx, dA and dB must
// match a naive double-precision evaluation of y = x W^T + s x A^T B^T.
TEST(Lora, ChunkedAdapterProductsMatchANaiveReference) {
  const int64_t rows = 600, in = 20, out = 30, r = 4;  // 600 rows: three chunks of 256
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Linear layer("fc", in, out, WeightLayout::OutIn, false);
    randomize_params(layer, 51);
    layer.weight().trainable = false;
    LoraConfig c;
    c.rank = r;
    c.alpha = 8;
    LoraAdapter& adapter = layer.attach_lora("adapter", c, 52);
    init_normal(adapter.b().value, 53, 1, 0.5f);
    const Tensor x = random_tensor({rows, in}, 54), dy = random_tensor({rows, out}, 55);
    RunContext rc;
    rc.input_grad = true;
    Saved saved;
    const Tensor y = layer.forward(x, saved, rc);
    const Tensor dx = layer.backward(dy, saved, rc);
    const float *w = layer.weight().value.f32(), *a = adapter.a().value.f32(), *b = adapter.b().value.f32();
    const double s = c.scale();
    std::vector<double> w_eff(out * in), h(rows * r, 0.0), g(rows * r, 0.0);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        double sum = w[o * in + i];
        for (int64_t k = 0; k < r; ++k) sum += s * b[o * r + k] * a[k * in + i];
        w_eff[o * in + i] = sum;
      }
    for (int64_t n = 0; n < rows; ++n)
      for (int64_t k = 0; k < r; ++k) {
        for (int64_t i = 0; i < in; ++i) h[n * r + k] += double(x.f32()[n * in + i]) * a[k * in + i];
        for (int64_t o = 0; o < out; ++o) g[n * r + k] += double(dy.f32()[n * out + o]) * b[o * r + k];
      }
    double worst = 0;
    auto compare = [&](double expected, float got) {
      worst = std::max(worst, std::abs(expected - got) / (1.0 + std::abs(expected)));
    };
    for (int64_t n = 0; n < rows; ++n) {
      for (int64_t o = 0; o < out; ++o) {
        double sum = 0;
        for (int64_t i = 0; i < in; ++i) sum += x.f32()[n * in + i] * w_eff[o * in + i];
        compare(sum, y.f32()[n * out + o]);
      }
      for (int64_t i = 0; i < in; ++i) {
        double sum = 0;
        for (int64_t o = 0; o < out; ++o) sum += dy.f32()[n * out + o] * w_eff[o * in + i];
        compare(sum, dx.f32()[n * in + i]);
      }
    }
    for (int64_t k = 0; k < r; ++k) {
      for (int64_t i = 0; i < in; ++i) {  // dA = s g^T x
        double sum = 0;
        for (int64_t n = 0; n < rows; ++n) sum += g[n * r + k] * x.f32()[n * in + i];
        compare(s * sum, adapter.a().grad.f32()[k * in + i]);
      }
      for (int64_t o = 0; o < out; ++o) {  // dB = s dy^T h
        double sum = 0;
        for (int64_t n = 0; n < rows; ++n) sum += dy.f32()[n * out + o] * h[n * r + k];
        compare(s * sum, adapter.b().grad.f32()[o * r + k]);
      }
    }
    EXPECT_LE(worst, 1e-4) << threads << " threads";
  }
  set_num_threads(1);
}

TEST(Lora, TrainableParametersOfTheReferenceWorkload) {
  MemoryLedger measuring(/*measure_only=*/true);  // 4.84M parameters, no memory needed
  LedgerScope scope(measuring);
  Gpt model(reference_workload_gpt());
  EXPECT_EQ(model.parameter_count(), 4837376);
  apply_lora(model, all_four(8), 0);
  // Per block: c_attn r(256 + 768), attn.c_proj r(256 + 256), c_fc r(256 + 1024), mlp.c_proj r(1024 + 256).
  EXPECT_EQ(model.trainable_parameter_count(), 6 * 8 * ((256 + 768) + (256 + 256) + (256 + 1024) + (1024 + 256)));
  EXPECT_EQ(model.trainable_parameter_count(), 196608);
  EXPECT_NEAR(static_cast<double>(196608) / 4837376, 0.041, 0.001);  // 4.1% of the model's 4.84M
}

TEST(Lora, GradientAndOptimizerBytesOnlyForAdapters) {
  MemoryLedger ledger;
  int64_t trainable = 0, lora_gemms = 0, full_gemms = 0;
  {
    LedgerScope scope(ledger);
    Gpt model(tiny_gpt_config());
    model.init_weights(45);
    apply_lora(model, all_four(4), 46);
    trainable = model.trainable_parameter_count();
    RandomTokens data(23, 8, 47);
    TrainOptions o;
    o.steps = 2;
    o.micro_batch = 2;
    Trainer trainer(model, data, o);
    const int64_t before = Linear::weight_gradient_gemms();
    trainer.step(0);
    trainer.step(1);
    lora_gemms = Linear::weight_gradient_gemms() - before;
    for (Param* p : model.params()) EXPECT_EQ(p->grad.defined(), p->trainable) << p->name;
  }
  EXPECT_EQ(ledger.peak()[MemCategory::Grads], static_cast<size_t>(4 * trainable));
  EXPECT_EQ(ledger.peak()[MemCategory::Optimizer], static_cast<size_t>(8 * trainable));  // AdamW m, v
  EXPECT_EQ(lora_gemms, 0);  // frozen weights: no weight-gradient GEMM at all
  {
    Gpt model(tiny_gpt_config());
    model.init_weights(45);
    const int64_t before = Linear::weight_gradient_gemms();
    accumulate_gradients(model, RandomTokens(23, 8, 47).batch(0, 2), 1, RunContext{});
    full_gemms = Linear::weight_gradient_gemms() - before;
  }
  EXPECT_EQ(full_gemms, 4 * 2 + 1);  // four per block and the tied head
}

TEST(Lora, MergedModelEqualsAdapterAndUnmergeRestores) {
  Gpt model(tiny_gpt_config());
  model.init_weights(48);
  apply_lora(model, all_four(4, 8), 49);
  randomize_adapters(model, 50);
  const Batch batch = RandomTokens(23, 8, 51).batch(0, 3);
  const double with_adapter = loss_of(model, batch);
  // Merge then unmerge one layer by hand: W comes back.
  Linear& first = *model.adaptable_linears()[0].second;
  std::vector<float> w0(first.weight().value.f32(), first.weight().value.f32() + first.weight().value.numel());
  first.lora()->merge_into(first.weight().value, true, 1.0f);
  first.lora()->merge_into(first.weight().value, true, -1.0f);
  double diff = 0, norm = 0;
  for (size_t i = 0; i < w0.size(); ++i) {
    diff += std::pow(first.weight().value.f32()[i] - w0[i], 2);
    norm += std::pow(w0[i], 2);
  }
  EXPECT_LE(std::sqrt(diff / norm), 1e-6);
  merge_lora(model);
  EXPECT_TRUE(lora_adapters(model).empty());
  const double merged = loss_of(model, batch);
  EXPECT_NEAR(merged, with_adapter, 1e-5 * with_adapter);
}

TEST(Lora, AdapterFilesRoundTrip) {
  const std::string dir = (std::filesystem::temp_directory_path() / "frugal_lora_roundtrip").string();
  Gpt model(tiny_gpt_config());
  model.init_weights(52);
  const LoraSettings settings = all_four(2, 4);
  apply_lora(model, settings, 53);
  randomize_adapters(model, 54);
  save_adapter(model, settings, dir);
  const Batch batch = RandomTokens(23, 8, 55).batch(0, 2);
  const double before = loss_of(model, batch);
  Gpt fresh(tiny_gpt_config());
  fresh.init_weights(52);
  const LoraSettings loaded = load_adapter(fresh, dir);
  EXPECT_EQ(loaded.config.rank, 2);
  EXPECT_EQ(loaded.config.alpha, 4.0);
  EXPECT_EQ(loaded.targets, settings.targets);
  EXPECT_EQ(loss_of(fresh, batch), before);
}

TEST(Lora, RecomputationWithLoraDropoutIsBitIdentical) {
  auto run = [](const std::string& strategy) {
    Gpt model(tiny_gpt_config());
    model.init_weights(56);
    apply_lora(model, all_four(4, 8, 0.25), 57);
    randomize_adapters(model, 58);
    const Batch batch = RandomTokens(23, 8, 59).batch(0, 4);
    const Schedule s = make_schedule(strategy, model, 2, 4, 0, RunContext{});
    RunContext rc;
    rc.seed = 3;
    accumulate_gradients(model, batch, 2, rc, &s);
    return snapshot_gradients(model);
  };
  const auto reference = run("store-all");
  EXPECT_EQ(run("memory-poor"), reference);
  EXPECT_EQ(run("sqrt"), reference);
}

TEST(Lora, AdaptersThatDoNotFitAreRefused) {
  Gpt model(tiny_gpt_config());
  LoraSettings bad = all_four(4);
  bad.targets = {"q_proj"};
  EXPECT_THROW(apply_lora(model, bad, 0), Error);  // matches no GPT-2 module
  Gpt model2(tiny_gpt_config());
  EXPECT_THROW(apply_lora(model2, all_four(17), 0), Error);  // rank > min(in, out) = 16
  // An adapter saved for a wider model does not load into this one.
  const std::string dir = (std::filesystem::temp_directory_path() / "frugal_lora_wide").string();
  GptConfig wide = tiny_gpt_config();
  wide.n_embd = 32;
  Gpt big(wide);
  apply_lora(big, all_four(2), 0);
  save_adapter(big, all_four(2), dir);
  Gpt small(tiny_gpt_config());
  try {
    load_adapter(small, dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shape"), std::string::npos) << e.what();
  }
}

TEST(Lora, HalfPrecisionBaseWeightsHalveTheirBytes) {
  auto run = [](DType base, size_t* live_params) {
    MemoryLedger ledger;
    GradientSnapshot grads;
    {
      LedgerScope scope(ledger);
      Gpt model(tiny_gpt_config());
      model.init_weights(60);
      apply_lora(model, all_four(4, 8), 61);
      randomize_adapters(model, 62);
      store_adapted_weights_as(model, base);
      *live_params = ledger.live()[MemCategory::Params];
      accumulate_gradients(model, RandomTokens(23, 8, 63).batch(0, 3), 1, RunContext{});
      grads = snapshot_gradients(model);
    }
    return grads;
  };
  size_t fp32_bytes = 0, bf16_bytes = 0, fp16_bytes = 0;
  const auto reference = run(DType::F32, &fp32_bytes);
  const auto bf16 = run(DType::BF16, &bf16_bytes);
  const auto fp16 = run(DType::F16, &fp16_bytes);
  // Adapted weights per block: 16x48 + 16x16 + 16x64 + 64x16 numbers, 2 bytes saved on each.
  const size_t saved = 2 * 2 * (16 * 48 + 16 * 16 + 16 * 64 + 64 * 16);
  EXPECT_EQ(fp32_bytes - bf16_bytes, saved);
  EXPECT_EQ(fp32_bytes - fp16_bytes, saved);
  for (const auto& [name, g] : reference) {
    EXPECT_LE(relative_difference(bf16.at(name), g), 6e-2) << name;
    EXPECT_LE(relative_difference(fp16.at(name), g), 3e-2) << name;
  }
}

TEST(Lora, DropoutMaskDoesNotDependOnTheMicroBatchSplit) {
  auto run = [](int64_t accum) {
    Gpt model(tiny_gpt_config());
    model.init_weights(64);
    apply_lora(model, all_four(4, 8, 0.3), 65);
    randomize_adapters(model, 66);
    RunContext rc;
    rc.seed = 9;
    accumulate_gradients(model, RandomTokens(23, 8, 67).batch(0, 4), accum, rc);
    return snapshot_gradients(model);
  };
  const auto full = run(1);
  EXPECT_LE(max_relative_difference(run(2), full), 1e-5);
  EXPECT_LE(max_relative_difference(run(4), full), 1e-5);
}
