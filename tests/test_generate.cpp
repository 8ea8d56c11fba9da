// Generation with a KV cache (train/generate.h, train/next_token.h, Gpt::forward_cached): the same
// logits and tokens as re-running the whole context, also past n_positions and on half weights;
// the cache's bytes in the ledger; the cached attention against the full one; the CLI's --stream
// and --no-kv-cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "cli_support.h"
#include "core/error.h"
#include "core/ledger.h"
#include "core/tensor_init.h"
#include "fixtures.h"
#include "kernels/convert.h"
#include "models/param_storage.h"
#include "nn/attention.h"
#include "tolerances.h"
#include "train/generate.h"
#include "train/next_token.h"

namespace frugal {
namespace {

using testing::tiny_gpt_config;

// Weight matrices at 10x GPT-2's initial scale, so next-token distributions are peaked and greedy
// generation wanders over many tokens instead of repeating one.
void peak(Model& model, uint64_t seed) {
  uint64_t stream = 100;
  for (Param* p : model.params())
    if (p->value.ndim() == 2) init_normal(p->value, seed, ++stream, 0.2f);
}

std::unique_ptr<Gpt> peaked_gpt(const GptConfig& config, uint64_t seed) {
  auto model = std::make_unique<Gpt>(config);
  model->init_weights(seed);
  peak(*model, seed);
  return model;
}

// max |a - b| / max |b| over one row of logits.
double relative_difference(const Tensor& a, const Tensor& b) {
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(a.f32()[i] - b.f32()[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(b.f32()[i])));
  }
  return diff / scale;
}

// The two paths compute the same logits in other orders (the cached one a row at a time, OpenBLAS's
// GEMV for one row, attention over the cache): each within gamma_n of its terms' magnitudes, n the
// fp32 reductions on the longest forward path (tolerances.h; any order, any kernel). Per block: two
// LayerNorms (mean and variance, 2E each), c_attn, attn.c_proj and mlp.c_fc (K = E, + bias), mlp.c_proj
// (K = 4E, + bias), attention (hd + 3 for a score, T for the softmax's sum, T for P V, expf's 4 ulp),
// two residual adds and GELU (a few more); then ln_f and the head (K = E). A logit's magnitude
// sum_d |h_d w_vd| is at most sqrt(E) ||g . w_v|| + sum_d |b_d w_vd|: h = g . xhat + b, ||xhat|| <= sqrt(E).
// Returned as a bound on relative_difference: 2 gamma_n max_v M_v / max_v |logit_v|.
double cached_logits_bound(Gpt& model, const Tensor& logits) {
  const GptConfig& c = model.gpt_config();
  const double E = static_cast<double>(c.n_embd), T = static_cast<double>(c.n_positions);
  const double hd = E / static_cast<double>(c.n_head);
  const double block = 2 * (2 * E) + 3 * (E + 1) + (4 * E + 1) + (hd + 3 + 2 * T + 8) + 2 + 8;
  const double n = static_cast<double>(c.n_layer) * block + 2 * E + E;
  const Tensor wte = widen(model.find_state("wte.weight").value), g = widen(model.find_state("ln_f.weight").value),
               b = widen(model.find_state("ln_f.bias").value);
  double largest_magnitude = 0, largest_logit = 0;
  for (int64_t v = 0; v < c.vocab_size; ++v) {
    double gw = 0, bw = 0;
    for (int64_t d = 0; d < c.n_embd; ++d) {
      const double w = wte.f32()[v * c.n_embd + d];
      gw += (g.f32()[d] * w) * (g.f32()[d] * w);
      bw += std::fabs(b.f32()[d] * w);
    }
    largest_magnitude = std::max(largest_magnitude, std::sqrt(E * gw) + bw);
    largest_logit = std::max(largest_logit, static_cast<double>(std::fabs(logits.f32()[v])));
  }
  return 2 * testing::gamma_n(n) * largest_magnitude / largest_logit;
}

// Greedy steps from `prompt`, comparing the cached and full logits at every step; returns the tokens.
std::vector<int32_t> compare_steps(Gpt& model, std::vector<int32_t> tokens, int64_t steps) {
  NextTokenLogits cached(model, true, model.gpt_config().n_positions), full(model, false, 0);
  for (int64_t n = 0; n < steps; ++n) {
    const Tensor a = cached.next(tokens), b = full.next(tokens);  // (1, V) each
    EXPECT_LE(relative_difference(a, b), cached_logits_bound(model, b)) << "step " << n << ", " << tokens.size() << " tokens";
    tokens.push_back(static_cast<int32_t>(std::max_element(b.f32(), b.f32() + b.numel()) - b.f32()));
  }
  return tokens;
}

TEST(Generate, CachedLogitsEqualFullContextLogitsPastTheWindow) {
  auto model = peaked_gpt(tiny_gpt_config(), 3);  // n_positions 8
  const std::vector<int32_t> tokens = compare_steps(*model, {1, 2, 3}, 20);  // the window slides from step 6
  EXPECT_GE(std::set<int32_t>(tokens.begin(), tokens.end()).size(), 4u) << "a degenerate run tests little";
  compare_steps(*model, {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 4);  // a prompt longer than the window
}

TEST(Generate, GreedyTokensIdenticalWithAndWithoutCache) {
  GptConfig config = tiny_gpt_config();
  config.n_positions = 16;
  auto model = peaked_gpt(config, 9);  // a seed whose greedy run does not settle into a short loop
  SampleOptions options{.tokens = 40, .temperature = 0};
  const std::vector<int32_t> with = generate_tokens(*model, {4, 2}, options);
  options.kv_cache = false;
  const std::vector<int32_t> without = generate_tokens(*model, {4, 2}, options);
  EXPECT_EQ(with, without);
  EXPECT_EQ(with.size(), 40u);
  EXPECT_GE(std::set<int32_t>(with.begin(), with.end()).size(), 4u);
}

TEST(Generate, SampledTokensIdenticalWithAndWithoutCache) {
  auto model = peaked_gpt(tiny_gpt_config(), 7);
  SampleOptions options{.tokens = 30, .temperature = 0.8f, .top_k = 5, .seed = 11};
  std::vector<int32_t> streamed;
  const std::vector<int32_t> with = generate_tokens(*model, {1}, options, [&](int32_t id) { streamed.push_back(id); });
  options.kv_cache = false;
  EXPECT_EQ(with, generate_tokens(*model, {1}, options));
  EXPECT_EQ(streamed, with);  // on_token saw every token, in order
  options.seed = 12;
  EXPECT_NE(with, generate_tokens(*model, {1}, options)) << "the seed changes the draws";
}

// Half weights (born bf16, as --precision bf16 without master weights makes them): forward_only
// widens them per layer; the cached path takes them the same way.
TEST(Generate, HalfWeightsGiveTheSameLogitsWithAndWithoutCache) {
  const GptConfig config = tiny_gpt_config();
  std::unique_ptr<Model> model = build_in_storage(
      [&] { return std::unique_ptr<Model>(std::make_unique<Gpt>(config)); },
      [](const Model&) {
        ParamStorage storage;
        storage.precision = DType::BF16;
        storage.master_weights = false;
        return storage;
      });
  auto& gpt = static_cast<Gpt&>(*model);
  gpt.init_weights(9);
  peak(gpt, 9);  // rounded to bf16 as it is drawn
  ASSERT_EQ(gpt.params().front()->value.dtype(), DType::BF16);
  compare_steps(gpt, {3, 1}, 12);
}

// Between tokens the only activations alive are the cache's keys and values: 2 x layers x heads x
// capacity x head_dim fp32, capacity = min(n_positions, prompt + tokens - 1).
TEST(Generate, CacheBytesAreActivationsInTheLedger) {
  GptConfig config = tiny_gpt_config();
  config.n_positions = 32;
  auto model = peaked_gpt(config, 1);
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  const size_t capacity = 5 + 10 - 1, head_dim = 16 / 2;
  const size_t expected = 2 * 2 * 2 * capacity * head_dim * 4;
  EXPECT_EQ(model->make_kv_cache(static_cast<int64_t>(capacity)).bytes(), expected);
  for (bool kv_cache : {true, false}) {
    SampleOptions options{.tokens = 10, .temperature = 0, .kv_cache = kv_cache};
    int calls = 0;
    generate_tokens(*model, {1, 2, 3, 4, 5}, options, [&](int32_t) {
      ++calls;
      EXPECT_EQ(ledger.live()[MemCategory::Activations], kv_cache ? expected : 0u) << "token " << calls;
    });
    EXPECT_EQ(calls, 10);
    EXPECT_EQ(ledger.live()[MemCategory::Activations], 0u) << "the cache is released with the run";
  }
}

// The layer's cached forward, fed 4 rows, then 1, then 2, equals the full causal attention over all 7.
TEST(Generate, CachedAttentionEqualsFullAttention) {
  const int64_t D = 12, H = 3, T = 7;
  CausalSelfAttention attention(D, H);
  attention.set_kernel(AttentionKernel::Materialized);
  Tensor qkv = Tensor::empty({1, T, 3 * D}, DType::F32, MemCategory::Activations);  // (1, T, 3D)
  init_normal(qkv, 4, 1, 1.0f);
  Saved saved;
  const Tensor full = attention.forward(qkv, saved, RunContext{});  // (1, T, D)
  KvCache cache(1, H, T, D / H);
  const Tensor flat = qkv.view({T, 3 * D});
  // Both compute y_t = sum_j P_tj v_j, P = softmax(scale q_t . k_j), in other orders. Each is within,
  // of the exact value: a score s_tj within e_tj = gamma_{hd+3} scale sum_d |q_td k_jd| (hd products,
  // the scale); P_tj relatively within e_tj + max_j e_tj (the max or log-sum-exp subtracted) + u (the
  // subtraction, per unit of |s| + log T) + 4 ulp = 8u (libmvec's expf) + u (the division) + gamma_T
  // (the normaliser's sum); y within sum_j P_tj |v_jd| (that + gamma_T). The two differ by at most
  // twice that (tolerances.h: any order, any kernel).
  const int64_t hd = D / H;
  const double scale = 1 / std::sqrt(static_cast<double>(hd)), u = testing::kFp32Unit;
  const auto x = [&](int64_t t, int64_t part, int64_t h, int64_t d) {
    return static_cast<double>(qkv.f32()[t * 3 * D + part * D + h * hd + d]);
  };
  std::vector<double> bound(T * D, 0.0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> s(t + 1), e(t + 1);
      double mx = -INFINITY, e_max = 0, s_max = 0;
      for (int64_t j = 0; j <= t; ++j) {
        double dot = 0, mag = 0;
        for (int64_t d = 0; d < hd; ++d) dot += x(t, 0, h, d) * x(j, 1, h, d), mag += std::fabs(x(t, 0, h, d) * x(j, 1, h, d));
        s[j] = scale * dot, e[j] = testing::gamma_n(static_cast<double>(hd + 3)) * scale * mag;
        mx = std::max(mx, s[j]), e_max = std::max(e_max, e[j]), s_max = std::max(s_max, std::fabs(s[j]));
      }
      double sum = 0;
      for (int64_t j = 0; j <= t; ++j) sum += std::exp(s[j] - mx);
      const double g_T = testing::gamma_n(static_cast<double>(t + 1));
      for (int64_t j = 0; j <= t; ++j) {
        const double p = std::exp(s[j] - mx) / sum;
        const double rho = e[j] + e_max + 2 * u * (s_max + std::log(static_cast<double>(t + 1))) + 9 * u + g_T;
        for (int64_t d = 0; d < hd; ++d) bound[t * D + h * hd + d] += 2 * p * std::fabs(x(j, 2, h, d)) * (rho + g_T);
      }
    }
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 4}, {4, 5}, {5, 7}}) {
    const Tensor rows = flat.slice_rows(begin, end).view({1, end - begin, 3 * D});
    const Tensor y = attention.forward_cached(rows, cache, 0);  // (1, end - begin, D)
    cache.advance(end - begin);
    for (int64_t i = 0; i < y.numel(); ++i) EXPECT_NEAR(y.f32()[i], full.f32()[begin * D + i], bound[begin * D + i]) << begin;
  }
  EXPECT_EQ(cache.length(), T);
}

TEST(Generate, BadRequestsAreOneLineErrors) {
  auto model = peaked_gpt(tiny_gpt_config(), 1);
  const SampleOptions options{.tokens = 3};
  EXPECT_THROW(generate_tokens(*model, {}, options), Error);
  try {
    generate_tokens(*model, {1, 23}, options);
    ADD_FAILURE() << "id 23 is beyond vocab_size 23";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prompt token id 23"), std::string::npos) << e.what();
  }
  EXPECT_THROW(model->make_kv_cache(9), Error);  // n_positions 8
  KvCache cache = model->make_kv_cache(2);
  Tensor three = Tensor::zeros({1, 3}, DType::I32, MemCategory::Activations);
  EXPECT_THROW(model->forward_cached(three, cache, RunContext{}), Error);  // 3 positions in a cache of 2
  NextTokenLogits next(*model, true, 2);
  EXPECT_THROW(next.next({1, 2, 3}), Error);
  EXPECT_THROW(generate_text(*model, "x", options), Error);  // byte text needs vocab_size >= 256
}

}  // namespace

namespace testing {
namespace {

namespace fs = std::filesystem;

// `generate --stream` with the cache prints the same greedy text as `--no-kv-cache`, past n_positions.
TEST(GenerateCli, StreamWithCacheEqualsNoCache) {
  const fs::path dir = scratch("generate-cli");
  const CliResult t = run_frugal("train --arch gpt --layers 1 --dim 16 --heads 2 --ctx 8 --vocab 256 --data synthetic "
                                 "--steps 2 --micro-batch 2 --save " + (dir / "model").string());
  ASSERT_EQ(t.status, 0) << t.err;
  const std::string common =
      "generate --model " + (dir / "model").string() + " --prompt abc --tokens 30 --temperature 0";
  const CliResult streamed = run_frugal(common + " --stream --timing");
  const CliResult plain = run_frugal(common + " --no-kv-cache");
  ASSERT_EQ(streamed.status, 0) << streamed.err;
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_EQ(streamed.out, plain.out);
  EXPECT_EQ(streamed.out.size(), 3u + 30u + 1u);  // prompt, 30 bytes, newline
  EXPECT_EQ(streamed.out.substr(0, 3), "abc");
  EXPECT_NE(streamed.err.find("30 new tokens"), std::string::npos) << streamed.err;
  EXPECT_NE(streamed.err.find("kv cache on"), std::string::npos) << streamed.err;
  EXPECT_TRUE(plain.err.empty()) << plain.err;
}

}  // namespace
}  // namespace testing
}  // namespace frugal
