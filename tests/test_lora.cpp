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
// match a naive double-precision evaluation of y = x W^T + s x A^T B^T, each element within gamma_n
// of the magnitudes its sums add (Higham; any kernel), n the roundings on its longest chain.
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
    // Each value with its magnitude (the same sums over the terms' absolute values).
    std::vector<double> w_eff(out * in), h(rows * r, 0.0), g(rows * r, 0.0);
    std::vector<double> w_mag(out * in), h_mag(rows * r, 0.0), g_mag(rows * r, 0.0);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        double sum = w[o * in + i], mag = std::fabs(w[o * in + i]);
        for (int64_t k = 0; k < r; ++k) {
          sum += s * b[o * r + k] * a[k * in + i];
          mag += std::fabs(s * b[o * r + k] * a[k * in + i]);
        }
        w_eff[o * in + i] = sum, w_mag[o * in + i] = mag;
      }
    for (int64_t n = 0; n < rows; ++n)
      for (int64_t k = 0; k < r; ++k) {
        for (int64_t i = 0; i < in; ++i) {
          h[n * r + k] += double(x.f32()[n * in + i]) * a[k * in + i];
          h_mag[n * r + k] += std::fabs(double(x.f32()[n * in + i]) * a[k * in + i]);
        }
        for (int64_t o = 0; o < out; ++o) {
          g[n * r + k] += double(dy.f32()[n * out + o]) * b[o * r + k];
          g_mag[n * r + k] += std::fabs(double(dy.f32()[n * out + o]) * b[o * r + k]);
        }
      }
    // Longest chains: y, the fold W + s B A (r products, the scale, the add: r + 2) then in terms;
    // dx, the fold then out terms; dA = s g^T x, g = dy B (out terms) then the rows, chunk by chunk
    // per thread and the threads' partial sums added, the scale and the accumulation into the
    // gradient; dB = s dy^T h, h = x A^T (in terms) likewise.
    const double n_y = in + r + 2, n_dx = out + r + 2;
    const double n_da = out + rows + threads + 2, n_db = in + rows + threads + 2;
    double worst = 0;  // largest |expected - got| / bound
    auto compare = [&](double expected, float got, double n, double magnitude) {
      worst = std::max(worst, std::abs(expected - got) / (gamma_n(n) * magnitude));
    };
    for (int64_t n = 0; n < rows; ++n) {
      for (int64_t o = 0; o < out; ++o) {
        double sum = 0, mag = 0;
        for (int64_t i = 0; i < in; ++i) {
          sum += x.f32()[n * in + i] * w_eff[o * in + i];
          mag += std::fabs(x.f32()[n * in + i]) * w_mag[o * in + i];
        }
        compare(sum, y.f32()[n * out + o], n_y, mag);
      }
      for (int64_t i = 0; i < in; ++i) {
        double sum = 0, mag = 0;
        for (int64_t o = 0; o < out; ++o) {
          sum += dy.f32()[n * out + o] * w_eff[o * in + i];
          mag += std::fabs(dy.f32()[n * out + o]) * w_mag[o * in + i];
        }
        compare(sum, dx.f32()[n * in + i], n_dx, mag);
      }
    }
    for (int64_t k = 0; k < r; ++k) {
      for (int64_t i = 0; i < in; ++i) {  // dA = s g^T x
        double sum = 0, mag = 0;
        for (int64_t n = 0; n < rows; ++n) {
          sum += g[n * r + k] * x.f32()[n * in + i];
          mag += g_mag[n * r + k] * std::fabs(x.f32()[n * in + i]);
        }
        compare(s * sum, adapter.a().grad.f32()[k * in + i], n_da, s * mag);
      }
      for (int64_t o = 0; o < out; ++o) {  // dB = s dy^T h
        double sum = 0, mag = 0;
        for (int64_t n = 0; n < rows; ++n) {
          sum += dy.f32()[n * out + o] * h[n * r + k];
          mag += std::fabs(dy.f32()[n * out + o]) * h_mag[n * r + k];
        }
        compare(s * sum, adapter.b().grad.f32()[o * r + k], n_db, s * mag);
      }
    }
    EXPECT_LE(worst, 1.0) << threads << " threads";
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
  // 4.1% of the model's 4.84M, as stated: within half of its last digit
  EXPECT_NEAR(static_cast<double>(196608) / 4837376, 0.041, 0.0005);
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
  // Bound: both merges add the same product P = s B A (one GEMM, the same shapes and threads; the
  // scale's sign is exact), so W1 = W + P rounds once (u |W1| <= u (|W| + |P|)) and W1 - P once more
  // (u |W|): per element u (2 |W| + s |B||A|).
  LoraAdapter& adapter = *first.lora();
  const int64_t in = first.weight().value.dim(0), out = first.weight().value.dim(1), r = adapter.config().rank;
  const double s = adapter.config().scale();
  double diff = 0, norm = 0, bound = 0;
  for (int64_t i = 0; i < in; ++i)
    for (int64_t o = 0; o < out; ++o) {  // (in, out): the c_attn weight's layout
      double ba = 0;
      for (int64_t k = 0; k < r; ++k) ba += std::fabs(adapter.b().value.f32()[o * r + k] * adapter.a().value.f32()[k * in + i]);
      const double w = w0[i * out + o];
      diff += std::pow(first.weight().value.f32()[i * out + o] - w, 2);
      norm += w * w;
      bound += std::pow(kFp32Unit * (2 * std::fabs(w) + s * ba), 2);
    }
  EXPECT_LE(std::sqrt(diff / norm), std::sqrt(bound / norm));
  merge_lora(model);
  EXPECT_TRUE(lora_adapters(model).empty());
  const double merged = loss_of(model, batch);
  // Both compute x (W + s B A): the adapter folds it into a copy, the merge into W. The forward's
  // products, to first order, each within 2 gamma_K of their magnitudes (gradcheck.h's gpt_forward_terms,
  // adapters included); the loss, a mean of positive terms, amplifies nothing.
  EXPECT_NEAR(merged, with_adapter, 2 * gamma_n(gpt_forward_terms(tiny_gpt_config(), r)) * with_adapter);
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
  const auto make = [](DType base) {
    return [base] {
      auto model = std::make_unique<Gpt>(tiny_gpt_config());
      model->init_weights(60);
      apply_lora(*model, all_four(4, 8), 61);
      randomize_adapters(*model, 62);
      store_adapted_weights_as(*model, base);
      return std::unique_ptr<Model>(std::move(model));
    };
  };
  const Batch batch = RandomTokens(23, 8, 63).batch(0, 3);
  auto run = [&](DType base, size_t* live_params) {
    MemoryLedger ledger;
    GradientSnapshot grads;
    {
      LedgerScope scope(ledger);
      const std::unique_ptr<Model> model = make(base)();
      *live_params = ledger.live()[MemCategory::Params];
      accumulate_gradients(*model, batch, 1, RunContext{});
      grads = snapshot_gradients(*model);
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
  // The base weights rounded once to the half type (unit u_h) and widened exactly; every product
  // stays fp32. To first order each adapted product's outputs move by at most u_h of their
  // magnitudes: 4 adapted products per block forward and 4 backward (dx), 2 blocks, 16 in all on
  // the longest path, against the batch gradient's condition (per-sample magnitudes, gradcheck.h);
  // plus the fp32 reductions' own bound (gpt_reduction_terms). Only the half run rounds.
  const GradientSnapshot magnitude = per_sample_magnitudes(make(DType::F32), batch);
  const double n32 = gpt_reduction_terms(tiny_gpt_config(), 3 * 8, 4), adapted_products = 2 * 2 * 4;
  for (const auto& [type, grads] : {std::pair{DType::BF16, &bf16}, std::pair{DType::F16, &fp16}}) {
    const double unit = type == DType::BF16 ? kBf16Unit : kFp16Unit;
    const SumOrderCheck c = against_magnitude_bound(*grads, reference, magnitude, adapted_products * unit + 2 * gamma_n(n32));
    EXPECT_LE(c.difference, c.bound) << dtype_name(type) << " " << c.name;
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
  // Two summation orders of one batch gradient (gradcheck.h); the masks are the same.
  const ModelMaker make = [] {
    auto model = std::make_unique<Gpt>(tiny_gpt_config());
    model->init_weights(64);
    apply_lora(*model, all_four(4, 8, 0.3), 65);
    randomize_adapters(*model, 66);
    return std::unique_ptr<Model>(std::move(model));
  };
  RunContext rc;
  rc.seed = 9;
  const GradientSnapshot magnitude = per_sample_magnitudes(make, RandomTokens(23, 8, 67).batch(0, 4), rc);
  const double n = gpt_reduction_terms(tiny_gpt_config(), 4 * 8, 4);
  for (int64_t accum : {2, 4}) {
    const SumOrderCheck c = against_sum_order_bound(run(accum), full, magnitude, n);
    EXPECT_LE(c.difference, c.bound) << accum << " micro-batches: " << c.name;
  }
}
