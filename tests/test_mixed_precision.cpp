// Mixed precision (issue 6): conversions (ties, subnormals, inf, NaN), fp16/bf16 gradients of GPT
// against fp32, the loss scaler (skip, back off, grow, nothing non-finite reaches the weights),
// updates lost without master weights, the memory claims on the reference workload (planner), and
// fp16 composed with sqrt checkpointing, accumulation and LoRA.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/half.h"
#include "core/tensor_init.h"
#include "fixtures.h"
#include "gradcheck.h"
#include "kernels/convert.h"
#include "models/gpt.h"
#include "models/lora_setup.h"
#include "models/mlp.h"
#include "train/accumulate.h"
#include "train/data.h"
#include "train/gradient_snapshot.h"
#include "train/planner.h"
#include "train/precision.h"
#include "train/schedule.h"
#include "train/trainer.h"

using namespace frugal;

namespace {
const float kInf = std::numeric_limits<float>::infinity();

// Each value repeated so the arrays run through the vectorised body and its tail.
std::vector<float> repeated(const std::vector<float>& values, int copies = 37) {
  std::vector<float> out;
  for (int c = 0; c < copies; ++c) out.insert(out.end(), values.begin(), values.end());
  return out;
}

std::vector<float> round_trip(const std::vector<float>& x, DType type) {
  std::vector<uint16_t> half(x.size());
  std::vector<float> back(x.size());
  float_to_half(x.data(), type, half.data(), static_cast<int64_t>(x.size()));
  half_to_float(half.data(), type, back.data(), static_cast<int64_t>(x.size()));
  std::vector<float> in_place = x;
  round_through_half(in_place.data(), type, static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_TRUE(std::memcmp(&back[i], &in_place[i], 4) == 0) << "round_through_half differs at " << x[i];
  return back;
}

void expect_rounds(DType type, const std::vector<std::pair<float, float>>& cases) {
  std::vector<float> in;
  for (const auto& c : cases) in.push_back(c.first);
  const std::vector<float> x = repeated(in);
  const std::vector<float> y = round_trip(x, type);
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = cases[i % cases.size()].second;
    if (std::isnan(want)) EXPECT_TRUE(std::isnan(y[i])) << x[i];
    else EXPECT_EQ(y[i], want) << "input " << x[i];
  }
}

GptConfig test_gpt() {
  GptConfig c = frugal::testing::tiny_gpt_config();
  c.n_embd = 32;
  c.n_positions = 16;
  c.vocab_size = 40;
  return c;
}

// Gradients of one pass of `batch` through a GPT (seed 3) stored in `precision` with the loss
// scaled by `scale`, unscaled afterwards; optionally LoRA, accumulation and a checkpoint strategy.
// A model with LoRA (lora = true) may have its adapted base weights stored in `base` (--base-precision).
std::unique_ptr<Gpt> make_gpt(bool lora = false, DType base = DType::F32, AttentionKernel kernel = AttentionKernel::Auto) {
  auto model = std::make_unique<Gpt>(test_gpt());
  model->init_weights(3);
  model->set_attention_kernel(kernel);
  if (lora) {
    LoraSettings s;
    s.config.rank = 4;
    s.config.alpha = 8;
    s.targets = {"c_attn", "c_proj", "c_fc"};
    apply_lora(*model, s, 5);
    for (LoraAdapter* a : lora_adapters(*model)) {  // non-zero B: every path carries gradient
      init_normal(a->a().value, 6, name_stream(a->a().name), 0.2f);
      init_normal(a->b().value, 6, name_stream(a->b().name), 0.2f);
    }
    store_adapted_weights_as(*model, base);
  }
  return model;
}

GradientSnapshot gpt_gradients(DType precision, float scale, const Batch& batch, int64_t accum = 1,
                               const std::string& checkpoint = "store-all", bool lora = false,
                               DType base = DType::F32, AttentionKernel kernel = AttentionKernel::Auto) {
  const std::unique_ptr<Gpt> owned = make_gpt(lora, base, kernel);
  Gpt& model = *owned;
  std::unique_ptr<MasterWeights> compute_copy;
  if (precision != DType::F32) compute_copy = std::make_unique<MasterWeights>(model.params(), precision, false);
  RunContext rc;
  rc.precision = precision;
  rc.loss_scale = scale;
  const Schedule schedule = make_schedule(checkpoint, model, batch.size() / accum, batch.size(), 0, rc);
  accumulate_gradients(model, batch, accum, rc, &schedule);
  LossScaleOptions o;
  o.mode = scale == 1.0f ? "none" : "static";
  o.value = scale;
  LossScaler scaler(o, precision);
  EXPECT_TRUE(scaler.unscale_and_check(model.params()));
  return snapshot_gradients(model);
}

// Per tensor ||a - b|| / ||b||, the largest over all tensors, with the tensor's name.
std::pair<double, std::string> worst_tensor(const GradientSnapshot& a, const GradientSnapshot& b) {
  std::pair<double, std::string> worst{0.0, ""};
  for (const auto& [name, ref] : b) {
    const double d = relative_difference(a.at(name), ref);
    if (d > worst.first) worst = {d, name};
  }
  return worst;
}

// Per tensor sum_s |g_s| of the fp32 model (tests/gradcheck.h): the batch sum's condition.
GradientSnapshot magnitudes(const Batch& batch, bool lora = false) {
  return frugal::testing::per_sample_magnitudes([lora] { return std::unique_ptr<Model>(make_gpt(lora)); }, batch);
}

// The largest kappa = ||sum_s |g_s| || / ||g|| over the tensors.
double condition(const GradientSnapshot& magnitude, const GradientSnapshot& reference) {
  return frugal::testing::against_magnitude_bound(reference, reference, magnitude, 1.0).bound;
}

// To first order each rounding moves what it rounds by at most u of its magnitude, and the gradient
// by at most u of the magnitudes it passes through: a half run is within (R u + 2 gamma_n) sum_s |g_s|
// of fp32's elementwise, R = gpt_half_roundings (gradcheck.h), n the fp32 reductions of either run (gradcheck.h's
// gpt_reduction_terms: their order may differ too), the per-sample magnitudes from the fp32 model.
// A worst case (every rounding aligned, the same on every kernel: they differ in fp32 sums only);
// these runs measure 1.5 to 17 u times the condition, 5 to 50 times below it.
double half_relative(DType type, double rows, bool lora) {
  const double unit = type == DType::BF16 ? frugal::testing::kBf16Unit : frugal::testing::kFp16Unit;
  const double adapted = lora ? 4 : 0, rank = lora ? 4 : 0;
  return frugal::testing::gpt_half_roundings(test_gpt(), adapted) * unit + 2 * frugal::testing::gamma_n(frugal::testing::gpt_reduction_terms(test_gpt(), rows, rank));
}

void expect_within_half_bound(const GradientSnapshot& half, const GradientSnapshot& fp32, const GradientSnapshot& magnitude,
                              double relative, const std::string& what) {
  const frugal::testing::SumOrderCheck c = frugal::testing::against_magnitude_bound(half, fp32, magnitude, relative);
  EXPECT_LE(c.difference, c.bound) << what << ": " << c.name;
}
}  // namespace

TEST(MixedPrecision, Fp16RoundTripTiesSubnormalsInfNan) {
  const float min_sub = std::ldexp(1.0f, -24);  // smallest fp16 subnormal
  expect_rounds(DType::F16, {
      {1.0f, 1.0f},
      {1.0f + std::ldexp(1.0f, -11), 1.0f},                                      // tie: to even (1.0)
      {1.0f + 3 * std::ldexp(1.0f, -11), 1.0f + std::ldexp(1.0f, -9)},           // tie: to even (up)
      {min_sub, min_sub},                                                         // subnormal kept
      {std::ldexp(1.0f, -25), 0.0f},                                              // half of it: tie to 0
      {3 * std::ldexp(1.0f, -25), 2 * min_sub},                                   // 1.5 ulp: tie to even
      {std::ldexp(1.0f, -26), 0.0f},                                              // underflow
      {65504.0f, 65504.0f},                                                       // largest finite
      {65519.0f, 65504.0f},
      {65520.0f, kInf},                                                           // tie at the top: inf
      {1e6f, kInf},                                                               // overflow gives inf
      {-1e6f, -kInf},
      {kInf, kInf},
      {-kInf, -kInf},
      {std::nanf(""), std::nanf("")},
      {-2.5f, -2.5f},
  });
}

TEST(MixedPrecision, Bf16RoundTripTiesSubnormalsInfNan) {
  expect_rounds(DType::BF16, {
      {1.0f, 1.0f},
      {1.0f + std::ldexp(1.0f, -8), 1.0f},                                        // tie: to even
      {1.0f + 3 * std::ldexp(1.0f, -8), 1.0f + std::ldexp(1.0f, -6)},             // tie: to even (up)
      {std::ldexp(1.0f, -130), std::ldexp(1.0f, -130)},                           // fp32 subnormal kept
      {3e38f, std::ldexp(1.765625f, 127)},                                        // near the top: finite
      {3.4e38f, kInf},                                                            // rounds past the largest
      {kInf, kInf},
      {-kInf, -kInf},
      {std::nanf(""), std::nanf("")},
      {-2.5f, -2.5f},
  });
}

TEST(MixedPrecision, GptGradientsInHalfPrecisionMatchFp32) {
  const Batch batch = RandomTokens(40, 16, 7).batch(0, 4);
  const GradientSnapshot fp32 = gpt_gradients(DType::F32, 1.0f, batch);
  const GradientSnapshot fp16_grads = gpt_gradients(DType::F16, 1024.0f, batch), bf16_grads = gpt_gradients(DType::BF16, 1.0f, batch);
  const auto fp16 = worst_tensor(fp16_grads, fp32);
  const auto bf16 = worst_tensor(bf16_grads, fp32);
  // half_relative's first-order bound (the loss scale 2^10 multiplies and divides exactly).
  const GradientSnapshot magnitude = magnitudes(batch);
  expect_within_half_bound(fp16_grads, fp32, magnitude, half_relative(DType::F16, 4 * 16, false), "fp16");
  expect_within_half_bound(bf16_grads, fp32, magnitude, half_relative(DType::BF16, 4 * 16, false), "bf16");
  // Separations: fp32 would agree to ~1e-6 (gamma_n), the half runs differ by ~2 u, and bf16's unit
  // (2^-8) is 8 times fp16's (2^-11): about 8 times as far (measured 8.6).
  EXPECT_GT(fp16.first, 0.0);  // the half runs really rounded something
  EXPECT_GT(bf16.first, fp16.first);  // bf16 keeps 8 bits of mantissa, fp16 11
}

TEST(MixedPrecision, Fp16WithCheckpointingAccumulationAndLoraMatchesPlainFp32) {
  const Batch batch = RandomTokens(40, 16, 8).batch(0, 4);
  const GradientSnapshot plain = gpt_gradients(DType::F32, 1.0f, batch, 1, "store-all", true);
  const GradientSnapshot composed = gpt_gradients(DType::F16, 1024.0f, batch, 2, "sqrt", true);
  ASSERT_EQ(composed.size(), plain.size());
  EXPECT_EQ(composed.size(), 2u * 4u * 2u);  // A and B of four adapted layers in each of 2 blocks
  // half_relative's bound with LoRA's roundings (4 adapted layers per block); accumulation and the
  // recomputation of sqrt checkpointing only reorder fp32 sums (rows) and repeat the same roundings.
  expect_within_half_bound(composed, plain, magnitudes(batch, true), half_relative(DType::F16, 4 * 16, true), "composed");
}

// The combination a memory-minded user picks first: LoRA on a base stored in a half type
// (--base-precision) under --precision fp16/bf16, either half type with either (it stopped with
// "expected an f32 tensor" before). Gradients are as close to plain fp32 LoRA's as on an fp32 base,
// and the planner's prediction equals the run's books.
TEST(MixedPrecision, HalfBaseUnderHalfPrecisionWithLora) {
  const Batch batch = RandomTokens(40, 16, 9).batch(0, 4);
  const GradientSnapshot plain = gpt_gradients(DType::F32, 1.0f, batch, 1, "store-all", true);
  const GradientSnapshot magnitude = magnitudes(batch, true);
  for (DType precision : {DType::F16, DType::BF16}) {
    const float scale = precision == DType::F16 ? 1024.0f : 1.0f;
    // The same precision on an fp32 base: what the half compute copy alone costs (half_relative).
    const GradientSnapshot on_fp32_base = gpt_gradients(precision, scale, batch, 1, "sqrt", true);
    const double fp32_base = worst_tensor(on_fp32_base, plain).first;
    expect_within_half_bound(on_fp32_base, plain, magnitude, half_relative(precision, 4 * 16, true),
                             precision_name(precision) + " on an fp32 base");
    for (DType base : {DType::F16, DType::BF16}) {
      SCOPED_TRACE(precision_name(precision) + " on a " + precision_name(base) + " base");
      const auto worst = worst_tensor(gpt_gradients(precision, scale, batch, 1, "sqrt", true, base), plain);
      // The run on the fp32 base plus what the base's storage changes: nothing when it is the compute
      // type (the same rounded values); else each adapted base weight moves by at most 2 u_bf16 + u_fp16
      // of itself (an fp16 base under bf16 is rounded twice: to fp16 when stored, to bf16 for the
      // products; a bf16 base is exact in fp16), through the 16 adapted base products on the longest
      // path (4 per block, forward and dx); and both runs' fp32 reductions (2 gamma_n each).
      const double moved = base == precision ? 0 : 2 * frugal::testing::kBf16Unit + frugal::testing::kFp16Unit;
      const double n = frugal::testing::gpt_reduction_terms(test_gpt(), 4 * 16, 4);
      const double bound = fp32_base + (16 * moved + 4 * frugal::testing::gamma_n(n)) * condition(magnitude, plain);
      EXPECT_LE(worst.first, bound) << worst.second;

      const auto make = [base] {
        auto m = std::make_unique<Gpt>(test_gpt());
        m->init_weights(1);
        LoraSettings s;
        s.config.rank = 4;
        s.targets = {"c_attn", "c_proj", "c_fc"};
        apply_lora(*m, s, 5);
        store_adapted_weights_as(*m, base);
        return m;
      };
      RandomTokens data(40, 16, 2);
      TrainOptions o;
      o.micro_batch = 4;
      o.precision = precision;
      MemoryLedger ledger;
      {
        LedgerScope scope(ledger);
        const std::unique_ptr<Gpt> m = make();
        Trainer trainer(*m, data, o);
        trainer.step(0);
        trainer.step(1);
      }
      const MemoryPlan plan = plan_training_memory(make, o);
      EXPECT_EQ(plan.peak.bytes, ledger.peak().bytes);
      EXPECT_EQ(plan.peak.total, ledger.peak().total);
    }
  }
}

TEST(MixedPrecision, LossScalerSkipsBacksOffAndGrows) {
  Param p{"w", Tensor::zeros({4}, DType::F32, MemCategory::Params), {}, true};
  p.ensure_grad();
  LossScaleOptions o;
  o.mode = "dynamic";
  o.value = 65536;
  o.growth_interval = 3;
  LossScaler scaler(o, DType::F16);
  EXPECT_EQ(scaler.scale(), 65536.0f);
  p.grad.f32()[2] = kInf;  // an overflowed gradient
  EXPECT_FALSE(scaler.unscale_and_check({&p}));
  EXPECT_EQ(scaler.scale(), 32768.0f);
  EXPECT_EQ(scaler.skipped_steps(), 1);
  for (int step = 0; step < 3; ++step) {
    p.grad.fill(32768.0f);
    EXPECT_TRUE(scaler.unscale_and_check({&p}));
    EXPECT_EQ(p.grad.f32()[0], 1.0f);  // unscaled
    EXPECT_EQ(scaler.scale(), step < 2 ? 32768.0f : 65536.0f) << step;  // grows after 3 finite steps
  }
  p.grad.f32()[0] = std::nanf("");
  EXPECT_FALSE(scaler.unscale_and_check({&p}));
  EXPECT_EQ(scaler.skipped_steps(), 2);
}

TEST(MixedPrecision, OverflowingStepsNeverReachTheMasterWeights) {
  // A loss scale of 2^40 overflows fp16 gradients: those steps are skipped and the scale halves
  // until the gradients fit; the weights only ever see finite updates, and the model still learns.
  LinearRegression model(8, 2);
  model.init_weights(11);
  SyntheticRegression data(8, 2, 12);
  TrainOptions o;
  o.steps = 60;
  o.micro_batch = 16;
  o.lr = 1e-2f;
  o.precision = DType::F16;
  o.loss_scale.mode = "dynamic";
  o.loss_scale.value = std::ldexp(1.0, 40);
  Trainer trainer(model, data, o);
  std::vector<double> losses;
  int64_t skipped = 0;
  for (int64_t s = 0; s < o.steps; ++s) {
    const StepRecord r = trainer.step(s);
    losses.push_back(r.loss);
    skipped += r.skipped;
    if (r.skipped) {
      EXPECT_EQ(trainer.loss_scale(), r.loss_scale * 0.5f);
    }
    for (Param* p : model.params()) {  // the fp16 compute copy: refreshed from finite masters only
      std::vector<float> w(p->value.numel());
      half_to_float(p->value.u16(), DType::F16, w.data(), p->value.numel());
      for (float v : w) ASSERT_TRUE(std::isfinite(v)) << p->name << " step " << s;
    }
  }
  EXPECT_GT(skipped, 10);  // 2^40 down to <= 2^25 or so takes more than 10 halvings
  EXPECT_EQ(trainer.skipped_steps(), skipped);
  // A learning claim, not a rounding bound: the 37 steps taken bring the loss to 0.47 of the first
  // (measured, every kernel: they change fp32 sums' last bits, an fp16 rounding flipped now and then,
  // ~1e-3 of one update: far below the margin).
  EXPECT_LT(losses.back(), 0.5 * losses.front());
  trainer.finish();
  for (Param* p : model.params()) EXPECT_EQ(p->value.dtype(), DType::F32);
}

// After training under bf16 with LoRA, finish() puts the adapters' fp32 masters back and leaves the
// frozen base in the type it trained in: widening it would add nothing but memory (the model's
// weights twice over), so the live parameter bytes do not grow.
TEST(MixedPrecision, FinishRestoresTrainableFp32AndKeepsTheFrozenBase) {
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  Gpt model(test_gpt());
  model.init_weights(1);
  LoraSettings s;
  s.config.rank = 4;
  s.targets = {"c_attn", "c_fc"};
  apply_lora(model, s, 5);
  RandomTokens data(40, 16, 2);
  TrainOptions o;
  o.micro_batch = 2;
  o.precision = DType::BF16;
  Trainer trainer(model, data, o);
  trainer.step(0);
  const size_t params_before = ledger.live()[MemCategory::Params] + ledger.live()[MemCategory::MasterParams];
  trainer.finish();
  int trainable = 0, frozen = 0;
  for (Param* p : model.params()) {
    EXPECT_EQ(p->value.dtype(), p->trainable ? DType::F32 : DType::BF16) << p->name;
    (p->trainable ? trainable : frozen) += 1;
  }
  EXPECT_GT(trainable, 0);
  EXPECT_GT(frozen, 0);
  EXPECT_LE(ledger.live()[MemCategory::Params] + ledger.live()[MemCategory::MasterParams], params_before);
}

TEST(MixedPrecision, UpdatesLostWithoutMasterWeights) {
  // Weights of 1.0 and an SGD step of 1e-4: below half an fp16 ulp at 1.0 (2^-11 = 4.9e-4), so the
  // fp16 weight does not move; the fp32 master keeps the update.
  for (bool keep_master : {false, true}) {
    Param p{"w", Tensor::zeros({64}, DType::F32, MemCategory::Params), {}, true};
    p.value.fill(1.0f);
    MasterWeights masters({&p}, DType::F16, keep_master);
    Sgd sgd(0.0f, 0.0f);
    for (int step = 0; step < 10; ++step) {
      p.ensure_grad().fill(1.0f);
      masters.step(sgd, 1e-4f);
    }
    EXPECT_EQ(masters.lost_update_fraction(), keep_master ? 0.0 : 1.0);
    masters.restore_fp32();
    // fp32 master: 10 subtractions of 1e-4f (g = 1: lr g exact) near 1, each rounding by at most u, and
    // the expected value's own 2 roundings: 12 u = 7.2e-7 (an update of 1e-4 lost would be 1e-4).
    if (keep_master) EXPECT_NEAR(p.value.f32()[0], 1.0f - 10 * 1e-4f, 12 * frugal::testing::kFp32Unit);  // every update kept
    else EXPECT_EQ(p.value.f32()[0], 1.0f);                                    // every update lost
  }
}

// The fused attention kernel in the half types (tiles widened, sums and log-sum-exps in fp32), with
// the tolerances of the test above, against fp32 on the same kernel; and the two kernels agree in
// bf16 as closely as each does with fp32.
TEST(MixedPrecision, GptFusedAttentionGradientsInHalfPrecisionMatchFp32) {
  const Batch batch = RandomTokens(40, 16, 7).batch(0, 4);
  const AttentionKernel flash = AttentionKernel::Flash;
  const GradientSnapshot fp32 = gpt_gradients(DType::F32, 1.0f, batch, 1, "store-all", false, DType::F32, flash);
  const GradientSnapshot bf16_flash = gpt_gradients(DType::BF16, 1.0f, batch, 1, "store-all", false, DType::F32, flash);
  const GradientSnapshot fp16_flash = gpt_gradients(DType::F16, 1024.0f, batch, 1, "store-all", false, DType::F32, flash);
  const auto fp16 = worst_tensor(fp16_flash, fp32);
  const auto bf16 = worst_tensor(bf16_flash, fp32);
  // half_relative's bound (the fused kernel stores fewer half values than the materialising one).
  const GradientSnapshot magnitude = magnitudes(batch);
  expect_within_half_bound(fp16_flash, fp32, magnitude, half_relative(DType::F16, 4 * 16, false), "flash fp16");
  expect_within_half_bound(bf16_flash, fp32, magnitude, half_relative(DType::BF16, 4 * 16, false), "flash bf16");
  EXPECT_GT(fp16.first, 0.0);  // separations as in the test above
  EXPECT_GT(bf16.first, fp16.first);
  // Each kernel's bf16 run within the bound of the exact gradient: the two within twice it.
  const GradientSnapshot bf16_materialized =
      gpt_gradients(DType::BF16, 1.0f, batch, 1, "store-all", false, DType::F32, AttentionKernel::Materialized);
  expect_within_half_bound(bf16_flash, bf16_materialized, magnitude, 2 * half_relative(DType::BF16, 4 * 16, false), "kernels");
}

TEST(MixedPrecision, ReferenceWorkloadMemoryByCategory) {
  // DESIGN.md's reference workload (GPT 6 x 256, 8 heads, context 128, micro-batch 16), predicted
  // by the planner (the same books as a run; tests/test_checkpointing.cpp checks they agree).
  const GptConfig c = frugal::testing::reference_workload_gpt();
  auto plan = [&](DType precision) {
    TrainOptions o;
    o.micro_batch = 16;
    o.precision = precision;
    return plan_training_memory([&] { return std::make_unique<Gpt>(c); }, o).peak;
  };
  const MemorySnapshot fp32 = plan(DType::F32);
  for (DType half : {DType::F16, DType::BF16}) {
    const MemorySnapshot mixed = plan(half);
    const double activations = static_cast<double>(mixed[MemCategory::Activations]) /
                               static_cast<double>(fp32[MemCategory::Activations]);
    const double total = static_cast<double>(mixed.total) / static_cast<double>(fp32.total);
    // Planned bytes (exact, no kernel involved): half storage halves every activation but the fp32
    // ones (token ids, LayerNorm statistics): 0.509 here; the total 0.67 with the fp32 master, grads
    // and optimizer state. The ceilings are issue 6's claims.
    EXPECT_LE(activations, 0.55);
    EXPECT_LE(total, 0.75);  // although ...
    EXPECT_EQ(mixed[MemCategory::MasterParams], fp32[MemCategory::Params]);  // ... a full fp32 copy exists
    EXPECT_EQ(mixed[MemCategory::Optimizer], fp32[MemCategory::Optimizer]);  // fp32 optimizer state
    EXPECT_EQ(mixed[MemCategory::Grads], fp32[MemCategory::Grads]);          // fp32 gradients
  }
}

TEST(MixedPrecision, PredictedEqualsMeasured) {
  RandomTokens data(40, 16, 2);
  TrainOptions o;
  o.micro_batch = 4;
  o.accum = 2;
  o.checkpoint = "sqrt";
  o.precision = DType::F16;
  MemoryLedger ledger;
  {
    LedgerScope scope(ledger);
    Gpt m(test_gpt());
    m.init_weights(1);
    Trainer trainer(m, data, o);
    trainer.step(0);
    trainer.step(1);
  }
  const MemoryPlan plan = plan_training_memory([&] { return std::make_unique<Gpt>(test_gpt()); }, o);
  EXPECT_EQ(plan.peak.bytes, ledger.peak().bytes);
  EXPECT_EQ(plan.peak.total, ledger.peak().total);
}
