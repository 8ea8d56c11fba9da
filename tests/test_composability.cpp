// Composability matrix (issues 15 and 20): every option that changes how a step is computed, against
// every other, on a small GPT and a small Llama (3 blocks, a chain of 5 each):
//
//   architecture   gpt | llama (Qwen3's variant, a superset of Llama's computation: grouped-query
//                  attention with per-head q/k norms, heads wider than D / H; untied head)
//   precision      fp32 | fp16 (static loss scale 1024) | bf16
//   base           fp32 | half: the frozen adapted weights stored via --base-precision in the
//                  precision's half type (bf16 under fp32 precision)
//   checkpoint     store-all | sqrt | memory-poor | optimal (budget between sqrt and memory-poor)
//   accum          1 | 3 (the same optimizer batch of 6 sequences)
//   LoRA           off | on (rank 4 on c_attn, c_proj, c_fc; Llama: all seven projections; A and B
//                  drawn non-zero)
//   LoRA dropout   0 | 0.1
//
// GPT itself has no dropout: dropout exists only on the LoRA path, and the frozen base is a LoRA
// notion, so with LoRA off the base and dropout axes collapse (6 LoRA-off + 24 LoRA-on groups of
// the 4 strategies: 120 cells per architecture, the full product of what is meaningful; about 5 s
// each on one core).
//
// "Gradients after two steps": each cell runs a Trainer step 0 (an SGD update: continuous in the
// gradient, unlike Adam's first, sign-like step, which would turn rounding-level differences of
// near-zero gradients into full-lr ones), then step 1's accumulated pass exactly as
// Trainer::step runs it (same batch, RunContext, loss scale, schedule), unscaled: the gradients the
// second optimizer step would apply. Each is compared with the fp32 store-all accum-1 reference of
// the same LoRA/dropout setting (same data, seeds and dropout masks, which are keyed by the
// sample's place in the optimizer batch), within the cell's bound (derived below); and across the
// checkpoint strategies of one group gradients are bit-identical (recomputation repeats the same
// arithmetic). Every cell also checks the planner: plan_training_memory equals a MemoryLedger over
// two real Trainer steps (and that run's step-1 loss equals the gradient run's, to the bit).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <ostream>
#include <string>

#include "core/tensor_init.h"
#include "fixtures.h"
#include "gradcheck.h"
#include "models/gpt.h"
#include "models/llama.h"
#include "models/lora_setup.h"
#include "train/accumulate.h"
#include "train/data.h"
#include "train/gradient_snapshot.h"
#include "train/planner.h"
#include "train/precision.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "tolerances.h"

using namespace frugal;
using frugal::testing::gamma_n;

namespace {

constexpr int64_t kBatch = 6;   // divisible by both accumulation counts
constexpr int64_t kChain = 5;   // blocks in the chain of a 3-layer GPT (embedding, 3 blocks, head)
constexpr uint64_t kDataSeed = 17;

// One group of the matrix: everything but the checkpoint strategy, which the test loops over.
struct Group {
  bool llama = false;
  DType precision = DType::F32;
  bool half_base = false;
  int64_t accum = 1;
  bool lora = false;
  double dropout = 0.0;
};

GptConfig matrix_gpt() {
  GptConfig c = frugal::testing::tiny_gpt_config();
  c.n_layer = 3;
  c.n_embd = 32;
  c.n_positions = 16;
  c.vocab_size = 40;
  return c;
}

// The Llama of the matrix: the GPT's width, depth, context and vocabulary; 4 query heads sharing 2
// key/value heads, an untied head; as Qwen3, heads of 12 (the attention 48 wide) normalised before
// the rotation, so the matrix covers every part of the family's block.
LlamaConfig matrix_llama() {
  LlamaConfig c;
  c.model_type = "qwen3";
  c.explicit_head_dim = 12;
  c.num_hidden_layers = 3;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 48;
  c.max_position_embeddings = 16;
  c.vocab_size = 40;
  return c;
}

DType base_type(const Group& g) {
  if (!g.half_base) return DType::F32;
  return g.precision == DType::F32 ? DType::BF16 : g.precision;
}

std::unique_ptr<Model> make_model(const Group& g) {
  std::unique_ptr<Model> model;
  if (g.llama) model = std::make_unique<Llama>(matrix_llama());
  else model = std::make_unique<Gpt>(matrix_gpt());
  model->init_weights(3);
  if (g.lora) {
    LoraSettings s;
    s.config.rank = 4;
    s.config.alpha = 8;
    s.config.dropout = g.dropout;
    if (g.llama) s.targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    else s.targets = {"c_attn", "c_proj", "c_fc"};
    apply_lora(*model, s, 5);
    // Non-zero B, so every path carries gradient; small (std 0.05), so the adapters perturb the base
    // model mildly and step 1's update does not throw the model into a sharply curved region where
    // rounding-level differences grow (at std 0.2 the LoRA-dropout cells' step-2 errors were 10-25x
    // their step-1 errors, with correct gradients: finite differences agree).
    for (LoraAdapter* a : lora_adapters(*model)) {
      init_normal(a->a().value, 6, name_stream(a->a().name), 0.05f);
      init_normal(a->b().value, 6, name_stream(a->b().name), 0.05f);
    }
    store_adapted_weights_as(*model, base_type(g));
  }
  return model;
}

TrainOptions options_for(const Group& g, const std::string& checkpoint, int64_t budget = 0) {
  TrainOptions o;
  o.steps = 2;
  o.micro_batch = kBatch / g.accum;
  o.accum = g.accum;
  o.optimizer = "sgd";
  o.lr = 0.5f;  // large enough that step 0's update changes step 1's gradients (checked below)
  o.schedule = "constant";
  o.checkpoint = checkpoint;
  o.activation_budget = budget;
  o.precision = g.precision;
  if (g.precision == DType::F16) {
    o.loss_scale.mode = "static";
    o.loss_scale.value = 1024;
  }
  return o;
}

// A budget that forces the optimal planner to recompute: midway between sqrt's and memory-poor's
// planned activation peaks for this group.
int64_t optimal_budget(const Group& g) {
  const auto activations = [&](const std::string& strategy) {
    const MemoryPlan plan = plan_training_memory([&] { return make_model(g); }, options_for(g, strategy));
    return static_cast<int64_t>(plan.peak[MemCategory::Activations]);
  };
  return (activations("sqrt") + activations("memory-poor")) / 2;
}

struct StepTwo {
  GradientSnapshot grads;
  double loss = 0.0;
  int64_t forward_calls = 0;  // per optimizer step
};

// Step 1's gradients after Trainer step 0's update (or, with update = false, on the initial weights).
StepTwo second_step_gradients(const Group& g, const TrainOptions& o, bool update = true) {
  const std::unique_ptr<Model> model = make_model(g);
  RandomTokens data(matrix_gpt().vocab_size, matrix_gpt().n_positions, kDataSeed);
  Trainer trainer(*model, data, o);
  if (update) {
    EXPECT_FALSE(trainer.step(0).skipped);
  }
  RunContext rc = o.run_context(1);
  rc.loss_scale = trainer.loss_scale();
  const AccumulatedPass pass =
      accumulate_gradients(*model, data.batch(1, o.batch_size()), o.accum, rc, &trainer.schedule());
  LossScaler scaler(o.loss_scale, o.precision);
  EXPECT_TRUE(scaler.unscale_and_check(model->params()));
  return {snapshot_gradients(*model), pass.loss, pass.forward_calls};
}

// ---- The bound -------------------------------------------------------------------------------------
// A cell's step-1 gradient against the reference's, tensor by tensor. Two differences add up (first
// order; each a worst case, every rounding aligned, whatever the GEMM kernel):
//  - step 1's own evaluation. A pass that errs by at most e of the magnitudes it adds is, per element,
//    within e sum_s |g_s| of exact (g_s the samples' own gradients, tests/gradcheck.h): per tensor
//    e kappa1_t of the reference, kappa1_t = ||sum_s |g_s| || / ||g_t|| at the step-1 weights;
//  - step 0's. Its gradient erred likewise, by at most e kappa0 of itself (kappa0 over all tensors,
//    at the initial weights), and so did the update lr g0 (clipping to norm 1 only projects it). The
//    whole update moved step 1's gradients by D_t ||g_t|| (the reference without it, measured here);
//    to first order, the curvature along the rounding error no larger than along the update, a
//    change of e kappa0 of the update moves them by e kappa0 D_t.
// So ||cell_t - reference_t|| / ||reference_t|| <= e (kappa1_t + kappa0 D_t).

// n for the matrix's Llama as gradcheck.h's gpt_reduction_terms counts a GPT's: the reductions whose
// order another blocking may change, on the longest path. Forward K = E (q|k|v), H hd (o_proj), E
// (gate|up), I (down) per block and E in the head; backward the dx products, K = (H + 2 KV) hd, E,
// 2 I, E per block and V in the head; the rows summed into a weight gradient. An adapter of rank r adds
// r + 2 to each of the 4 products on the path, forward and backward.
double llama_reduction_terms(const LlamaConfig& c, double rows, double lora_rank) {
  const double E = static_cast<double>(c.hidden_size), L = static_cast<double>(c.num_hidden_layers);
  const double hd = static_cast<double>(c.head_dim()), H = static_cast<double>(c.num_attention_heads);
  const double KV = static_cast<double>(c.num_key_value_heads), I = static_cast<double>(c.intermediate_size);
  const double adapter = lora_rank > 0 ? 4 * (lora_rank + 2) : 0;
  return L * (2 * E + H * hd + I + adapter) + E + L * ((H + 2 * KV) * hd + 2 * E + 2 * I + adapter) +
         static_cast<double>(c.vocab_size) + rows;
}

// The half roundings on the longest path under --precision fp16/bf16 (nn/half_storage.h: every
// layer's output, saved tensors and input gradient stored in the half type, products adding in fp32),
// counted as tests/test_mixed_precision.cpp counts a GPT's: forward, per block, the outputs of ln_1,
// c_attn, attention (and its saved probabilities), attn.c_proj, the residual, ln_2, c_fc, GELU,
// mlp.c_proj and the residual (11) and the compute copies of its 6 weights and gains; backward the 9
// layers' input gradients and the residual's sum (10); around the blocks the embedding's tables and
// sum, ln_f's output and gain, the head's dlogits (6). Llama's block: the outputs of input_norm,
// q|k|v, the head norms, the rotated q|k|v, attention (and its probabilities), o_proj, the residual,
// post_attention_norm, gate|up, SwiGLU, down_proj and the residual (13), the copies of its 7 weights
// and gains; backward down_proj, SwiGLU, gate|up, the norm, the residual, o_proj, attention (dS and
// dqkv), the head norms, q|k|v and their sum, input_norm and the residual (13). Each adapted layer on
// the path (4 per block) adds 4: A's and B's copies, h = x A^T stored half, g = dy B rounded.
double layers(const Group& g) {
  return static_cast<double>(g.llama ? matrix_llama().num_hidden_layers : matrix_gpt().n_layer);
}
double half_roundings(const Group& g) {
  const double adapted = g.lora ? 4 : 0;
  return 6 + layers(g) * ((g.llama ? 33 : 27) + 4 * adapted);
}

// e for a cell: what one pass may err by, relative to the magnitudes it adds.
//  - fp32 reductions, whose order accumulation (micro-batches of 2) may change: 2 gamma_n, n the
//    terms above for the batch's 6 x 16 rows, and 2 for the update's own roundings of the weights;
//  - a half base under fp32 precision (LoRA only): the adapted base weights, rounded once to bf16,
//    move the outputs of the 4 adapted products per block, forward and dx, by u_bf16 of their
//    magnitudes (as tests/test_lora.cpp): 8 L u_bf16;
//  - fp16/bf16 precision: half_roundings of the format's unit. A half base of the precision's own type
//    holds the values the compute copy would round to anyway: nothing more. The loss scale 2^10
//    multiplies and divides exactly.
double fp32_pass_error(const Group& g) {
  const double rows = kBatch * matrix_gpt().n_positions, rank = g.lora ? 4 : 0;
  const double n = g.llama ? llama_reduction_terms(matrix_llama(), rows, rank)
                           : frugal::testing::gpt_reduction_terms(matrix_gpt(), rows, rank);
  return 2 * gamma_n(n + 2);
}
double pass_error(const Group& g) {
  double e = fp32_pass_error(g);
  if (g.precision == DType::F32 && g.half_base) e += 8 * layers(g) * frugal::testing::kBf16Unit;
  if (g.precision == DType::F16) e += half_roundings(g) * frugal::testing::kFp16Unit;
  if (g.precision == DType::BF16) e += half_roundings(g) * frugal::testing::kBf16Unit;
  return e;
}

double norm_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

// kappa1_t, kappa0 and D_t of a reference group (fp32, store-all, accum 1), from its step-1 gradients
// with and without step 0's update.
struct Sensitivity {
  std::map<std::string, double> kappa1, moved;
  double kappa0 = 0;
  // Per tensor, e (kappa1_t + kappa0 D_t).
  std::map<std::string, double> bounds(double e) const {
    std::map<std::string, double> out;
    for (const auto& [name, k] : kappa1) out[name] = e * (k + kappa0 * moved.at(name));
    return out;
  }
};
Sensitivity sensitivity(const Group& ref, const GradientSnapshot& reference, const GradientSnapshot& no_update) {
  RandomTokens data(matrix_gpt().vocab_size, matrix_gpt().n_positions, kDataSeed);
  const TrainOptions o = options_for(ref, "store-all");
  GradientSnapshot g0;
  {
    const std::unique_ptr<Model> model = make_model(ref);
    accumulate_gradients(*model, data.batch(0, kBatch), 1, o.run_context(0));
    g0 = snapshot_gradients(*model);
  }
  const Batch batch0 = data.batch(0, kBatch), batch1 = data.batch(1, kBatch);
  const GradientSnapshot m0 =
      frugal::testing::per_sample_magnitudes([&] { return make_model(ref); }, batch0, o.run_context(0));
  const GradientSnapshot m1 = frugal::testing::per_sample_magnitudes(
      [&] {  // the weights step 1 is taken at
        std::unique_ptr<Model> model = make_model(ref);
        RandomTokens d(matrix_gpt().vocab_size, matrix_gpt().n_positions, kDataSeed);
        Trainer trainer(*model, d, o);
        trainer.step(0);
        return model;
      },
      batch1, o.run_context(1));
  Sensitivity s;
  double m = 0, g = 0;
  for (const auto& [name, values] : g0) m += std::pow(norm_of(m0.at(name)), 2), g += std::pow(norm_of(values), 2);
  s.kappa0 = std::sqrt(m / g);
  for (const auto& [name, values] : reference) {
    s.kappa1[name] = norm_of(m1.at(name)) / norm_of(values);
    s.moved[name] = relative_difference(no_update.at(name), values);
  }
  return s;
}

// The tensor with the largest ||a_t - b_t|| / ||b_t|| against its bound: (that ratio to its bound, name).
std::pair<double, std::string> worst_tensor(const GradientSnapshot& a, const GradientSnapshot& b,
                                            const std::map<std::string, double>& bound) {
  EXPECT_EQ(a.size(), b.size());
  std::pair<double, std::string> worst{0.0, ""};
  for (const auto& [name, ref] : b) {
    const double d = relative_difference(a.at(name), ref) / bound.at(name);
    if (d >= worst.first) worst = {d, name};
  }
  return worst;
}

// The planner's prediction equals the books of two real Trainer steps; returns step 1's loss.
double expect_planned_equals_measured(const Group& g, const TrainOptions& o) {
  MemoryLedger ledger;
  double loss = 0.0;
  {
    LedgerScope scope(ledger);
    const std::unique_ptr<Model> model = make_model(g);
    RandomTokens data(matrix_gpt().vocab_size, matrix_gpt().n_positions, kDataSeed);
    Trainer trainer(*model, data, o);
    trainer.step(0);
    loss = trainer.step(1).loss;
  }
  const MemoryPlan plan = plan_training_memory([&] { return make_model(g); }, o);
  EXPECT_EQ(plan.peak.bytes, ledger.peak().bytes);
  EXPECT_EQ(plan.peak.total, ledger.peak().total);
  return loss;
}

std::string group_name(const Group& g) {
  std::string name = (g.llama ? "llama_" : "") + precision_name(g.precision);
  if (g.half_base) name += "_" + precision_name(base_type(g)) + "base";
  name += "_accum" + std::to_string(g.accum);
  if (g.lora) name += g.dropout > 0 ? "_lora_dropout" : "_lora";
  return name;
}

// gtest prints a parameter by this (otherwise as raw bytes, padding included).
void PrintTo(const Group& g, std::ostream* os) { *os << group_name(g); }

std::vector<Group> matrix() {
  std::vector<Group> groups;
  for (bool llama : {false, true})
    for (DType precision : {DType::F32, DType::F16, DType::BF16})
      for (int64_t accum : {1, 3}) {
        groups.push_back({llama, precision, false, accum, false, 0.0});
        for (bool half_base : {false, true})
          for (double dropout : {0.0, 0.1}) groups.push_back({llama, precision, half_base, accum, true, dropout});
      }
  return groups;
}

class Composability : public ::testing::TestWithParam<Group> {};

TEST_P(Composability, GradientsAndMemoryMatchReference) {
  const Group g = GetParam();
  const Group ref_group{g.llama, DType::F32, false, 1, g.lora, g.dropout};
  const StepTwo reference = second_step_gradients(ref_group, options_for(ref_group, "store-all"));
  const StepTwo no_update = second_step_gradients(ref_group, options_for(ref_group, "store-all"), false);
  const Sensitivity sensitivity_of_ref = sensitivity(ref_group, reference.grads, no_update.grads);
  const std::map<std::string, double> bound = sensitivity_of_ref.bounds(pass_error(g));
  // Step 0's update matters: without it some tensor misses the reference by more than twice an fp32
  // cell's bound, so an fp32 cell that lost it would fail. (The half cells' worst-case bounds are wider
  // than the update's effect: they show agreement only. Their update is the fp32 cells' code: the
  // optimizer steps the fp32 masters.)
  const std::pair<double, std::string> moved =
      worst_tensor(no_update.grads, reference.grads, sensitivity_of_ref.bounds(fp32_pass_error(g)));
  EXPECT_GT(moved.first, 2.0) << moved.second;

  const int64_t budget = optimal_budget(g);
  GradientSnapshot store_all;
  for (const std::string strategy : {"store-all", "sqrt", "memory-poor", "optimal"}) {
    SCOPED_TRACE(group_name(g) + " " + strategy);
    const TrainOptions o = options_for(g, strategy, strategy == "optimal" ? budget : 0);
    const StepTwo cell = second_step_gradients(g, o);
    const auto worst = worst_tensor(cell.grads, reference.grads, bound);  // (difference / bound, name)
    EXPECT_LE(worst.first, 1.0) << worst.second;
    if (strategy == "store-all") {
      store_all = cell.grads;
      EXPECT_EQ(cell.forward_calls, g.accum * kChain);
    } else {
      EXPECT_GT(cell.forward_calls, g.accum * kChain);  // it really recomputed
      EXPECT_EQ(cell.grads, store_all);                 // bit for bit
    }
    EXPECT_EQ(expect_planned_equals_measured(g, o), cell.loss);
  }
}

INSTANTIATE_TEST_SUITE_P(Matrix, Composability, ::testing::ValuesIn(matrix()),
                         [](const ::testing::TestParamInfo<Group>& info) { return group_name(info.param); });

}  // namespace
