// Packing (issue 34): several examples in one row, each at positions 0.. of its own, attention never
// crossing an example's start. The fused kernel, the rotary and learned positions and whole models
// must give what each example gives alone, within the rounding of another summation order.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "fixtures.h"
#include "gradcheck.h"
#include "kernels/flash_attention.h"
#include "kernels/rope.h"
#include "models/gpt.h"
#include "models/llama.h"
#include "tolerances.h"
#include "train/executor.h"
#include "train/gradient_snapshot.h"

using namespace frugal;
using namespace frugal::testing;

namespace {

// Positions of examples of these lengths one after another, each counting from 0.
std::vector<int32_t> packed_positions(const std::vector<int64_t>& lengths) {
  std::vector<int32_t> p;
  for (int64_t n : lengths)
    for (int64_t t = 0; t < n; ++t) p.push_back(static_cast<int32_t>(t));
  return p;
}

struct AttentionRun {
  std::vector<float> y, lse, dqkv;
};

// The fused kernel forward and backward over one row of T tokens: qkv (1, T, 3D), dy (1, T, D).
AttentionRun run_flash(const float* qkv, const float* dy, int64_t T, int64_t D, int64_t H, int64_t tile,
                       const int32_t* positions) {
  AttentionRun r{std::vector<float>(static_cast<size_t>(T * D)), std::vector<float>(static_cast<size_t>(H * T)),
                 std::vector<float>(static_cast<size_t>(T * 3 * D))};
  const int64_t per_thread =
      std::max(flash_attention_forward_scratch(T, D / H, tile), flash_attention_backward_scratch(T, D / H, tile));
  std::vector<float> scratch(static_cast<size_t>(per_thread * omp_get_max_threads()));
  flash_attention_forward(DType::F32, qkv, r.y.data(), r.lse.data(), 1, T, D, H, tile, scratch.data(), nullptr,
                          positions);
  flash_attention_backward(DType::F32, qkv, r.y.data(), r.lse.data(), dy, r.dqkv.data(), 1, T, D, H, tile,
                           scratch.data(), nullptr, positions);
  return r;
}

double max_abs(const float* v, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(v[i])));
  return m;
}

// Largest |a - b| over n values.
double max_difference(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// A ragged batch of examples of these lengths in one (1, N) row with their positions; random ids
// below `vocab`, every third target ignored.
Batch packed_batch(const std::vector<int64_t>& lengths, int64_t vocab, uint64_t seed) {
  const std::vector<int32_t> pos = packed_positions(lengths);
  const int64_t N = static_cast<int64_t>(pos.size());
  Batch b{Tensor::empty({1, N}, DType::I32, MemCategory::Activations),
          Tensor::empty({1, N}, DType::I32, MemCategory::Activations)};
  b.positions = Tensor::empty({1, N}, DType::I32, MemCategory::Activations);
  const std::vector<float> r = normal_values(2 * N, seed);
  for (int64_t i = 0; i < N; ++i) {
    b.inputs.i32()[i] = static_cast<int32_t>(std::fabs(r[static_cast<size_t>(i)]) * 1000) % static_cast<int32_t>(vocab);
    b.targets.i32()[i] = i % 3 == 2 ? -100
                                    : static_cast<int32_t>(std::fabs(r[static_cast<size_t>(N + i)]) * 1000) %
                                          static_cast<int32_t>(vocab);
    b.positions.i32()[i] = pos[static_cast<size_t>(i)];
  }
  b.example_starts = {0};
  for (int64_t n : lengths) b.example_starts.push_back(b.example_starts.back() + n);
  return b;
}

// Example e of a ragged batch on its own: a (1, n) row without positions, as before packing existed.
Batch alone(const Batch& packed, int64_t e) {
  Batch b = packed.slice(e, e + 1);
  b.positions = Tensor();
  b.example_starts.clear();
  return b;
}

// The reference: each example through its own forward and backward, summed, over the batch's count.
GradientSnapshot one_at_a_time(const ModelMaker& make, const Batch& packed, double* loss = nullptr) {
  const std::unique_ptr<Model> model = make();
  const double normalizer = static_cast<double>(count_items(*model, packed));
  double total = 0;
  for (int64_t e = 0; e < packed.size(); ++e) total += forward_backward(*model, alone(packed, e), normalizer, {}).loss;
  if (loss) *loss = total;
  return snapshot_gradients(*model);
}

LlamaConfig small_llama(const std::string& type) {
  LlamaConfig c;
  c.model_type = type;
  c.num_hidden_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 40;
  c.max_position_embeddings = 24;
  c.vocab_size = 50;
  if (type == "qwen3") c.explicit_head_dim = 12;
  return c;
}

// The reductions whose order packing may change, on the longest path of a Llama gradient: forward
// K = D (q, k, v, gate, up), A (o) and I (down) per layer, D in the head; backward their dx products
// (K = A + 2 Dkv, D, 2 I, ...: at most 3 D + 2 I per layer) and V; then `rows` tokens summed into a
// weight gradient. Attention adds the softmax sums over at most `longest` keys, forward and backward.
double llama_reduction_terms(const LlamaConfig& c, double rows, double longest) {
  const double D = static_cast<double>(c.hidden_size), I = static_cast<double>(c.intermediate_size);
  const double L = static_cast<double>(c.num_hidden_layers);
  return L * (6 * D + 3 * I + 4 * longest) + D + static_cast<double>(c.vocab_size) + rows;
}

}  // namespace

// Every example of a packed row gets the output, log-sum-exps and gradients it gets alone: lengths
// that cross tiles, a one-token example, tiles of 64, 16 and 7.
TEST(PackedAttention, EachExampleAsIfAlone) {
  const std::vector<int64_t> lengths{5, 70, 1, 130, 30};
  const int64_t D = 16, H = 2, hd = D / H;
  const std::vector<int32_t> pos = packed_positions(lengths);
  const int64_t N = static_cast<int64_t>(pos.size());
  const std::vector<float> qkv = normal_values(N * 3 * D, 1), dy = normal_values(N * D, 2);
  for (int64_t tile : {64, 16, 7}) {
    const AttentionRun packed = run_flash(qkv.data(), dy.data(), N, D, H, tile, pos.data());
    int64_t first = 0;
    for (int64_t n : lengths) {
      const AttentionRun one = run_flash(qkv.data() + first * 3 * D, dy.data() + first * D, n, D, H, tile, nullptr);
      // Another tiling of the same keys: the softmax sums and P V over at most n keys (and the
      // backward's products over n queries and hd) added in another order.
      const double rel = 4 * gamma_n(static_cast<double>(2 * n + hd));
      const double vmax = max_abs(qkv.data() + first * 3 * D, n * 3 * D);
      EXPECT_LE(max_difference(packed.y.data() + first * D, one.y.data(), n * D), rel * vmax) << "tile " << tile;
      for (int64_t h = 0; h < H; ++h)
        EXPECT_LE(max_difference(packed.lse.data() + h * N + first, one.lse.data() + h * n, n),
                  rel * (1 + max_abs(one.lse.data() + h * n, n)));
      EXPECT_LE(max_difference(packed.dqkv.data() + first * 3 * D, one.dqkv.data(), n * 3 * D),
                rel * vmax * vmax * max_abs(dy.data() + first * D, n * D) * static_cast<double>(hd))
          << "tile " << tile << " example of " << n;
      first += n;
    }
  }
}

// One example per row with positions 0..T-1 runs exactly what a row without positions runs.
TEST(PackedAttention, OneExampleIsBitIdenticalToNoPositions) {
  const int64_t T = 150, D = 16, H = 4;
  const std::vector<int32_t> pos = packed_positions({T});
  const std::vector<float> qkv = normal_values(T * 3 * D, 3), dy = normal_values(T * D, 4);
  const AttentionRun with = run_flash(qkv.data(), dy.data(), T, D, H, 32, pos.data());
  const AttentionRun without = run_flash(qkv.data(), dy.data(), T, D, H, 32, nullptr);
  EXPECT_EQ(with.y, without.y);
  EXPECT_EQ(with.lse, without.lse);
  EXPECT_EQ(with.dqkv, without.dqkv);
}

// Rotary positions per token equal each example rotated from position 0 (the same float operations).
TEST(PackedAttention, RotaryPositionsRestartPerExample) {
  const std::vector<int64_t> lengths{3, 11, 6};
  const std::vector<int32_t> pos = packed_positions(lengths);
  const int64_t N = 20, heads = 3, hd = 8, width = heads * hd;
  const std::vector<float> freq = rope_inverse_frequencies(hd, 10000.0);
  std::vector<float> packed = normal_values(N * width, 5), separate = packed;
  rope_apply(packed.data(), 1, N, heads, hd, 0, freq, false, 0, pos.data());
  int64_t first = 0;
  for (int64_t n : lengths) {
    rope_apply(separate.data() + first * width, 1, n, heads, hd, 0, freq);
    first += n;
  }
  EXPECT_EQ(packed, separate);
}

// Whole models: the gradient of a packed row equals the sum of the examples' gradients computed one
// at a time, and so does a ragged batch accumulated one example per micro-batch.
TEST(PackedModels, GradientsEqualExamplesOneAtATime) {
  const std::vector<int64_t> lengths{3, 9, 1, 6};
  GptConfig gpt = tiny_gpt_config();
  gpt.n_positions = 12;
  struct Case {
    std::string name;
    ModelMaker make;
    int64_t vocab;
    double terms;
  };
  const double rows = 19, longest = 9;
  std::vector<Case> cases{{"gpt", model_maker<Gpt>(gpt, 7), gpt.vocab_size,
                           gpt_reduction_terms(gpt, rows) + 4 * longest * static_cast<double>(gpt.n_layer)}};
  for (const std::string type : {"llama", "qwen3"}) {
    const LlamaConfig c = small_llama(type);
    cases.push_back({type, model_maker<Llama>(c, 8), c.vocab_size, llama_reduction_terms(c, rows, longest)});
  }
  for (const Case& c : cases) {
    const Batch batch = packed_batch(lengths, c.vocab, 9);
    double loss_alone = 0;
    const GradientSnapshot reference = one_at_a_time(c.make, batch, &loss_alone);
    const GradientSnapshot magnitude = per_sample_magnitudes(c.make, batch);
    for (int64_t accum : {1, 4}) {
      const SumOrderCheck check =
          against_sum_order_bound(accumulated_gradients(c.make, batch, accum), reference, magnitude, c.terms);
      EXPECT_LE(check.difference, check.bound) << c.name << " accum " << accum << ": " << check.name;
    }
    const std::unique_ptr<Model> model = c.make();
    const double loss = forward_backward(*model, batch, static_cast<double>(count_items(*model, batch)), {}).loss;
    EXPECT_NEAR(loss, loss_alone, 2 * gamma_n(c.terms) * loss_alone) << c.name;
  }
}

// An example's logits inside a pack equal its logits alone.
TEST(PackedModels, LogitsInsideAPackEqualLogitsAlone) {
  const std::vector<int64_t> lengths{4, 10, 5};
  const LlamaConfig c = small_llama("llama");
  const std::unique_ptr<Model> model = model_maker<Llama>(c, 3)();
  const Batch batch = packed_batch(lengths, c.vocab_size, 4);
  RunContext rc;
  rc.training = false;
  rc.positions = &batch.positions;
  const Tensor packed = forward_only(*model, batch.inputs, rc);  // (1, N, V)
  const int64_t V = c.vocab_size;
  for (int64_t e = 0; e < batch.size(); ++e) {
    const Batch one = alone(batch, e);
    RunContext plain;
    plain.training = false;
    const Tensor logits = forward_only(*model, one.inputs, plain);  // (1, n, V)
    const int64_t first = batch.example_starts[static_cast<size_t>(e)], n = one.inputs.dim(1);
    const double bound = 2 * gamma_n(llama_reduction_terms(c, 0, 10)) * (1 + max_abs(logits.f32(), n * V));
    EXPECT_LE(max_difference(packed.f32() + first * V, logits.f32(), n * V), bound) << "example " << e;
  }
}

// Positions that do not count up within examples are refused, naming the token.
TEST(PackedModels, BadPositionsAreNamed) {
  Batch b = packed_batch({3, 4}, 23, 1);
  b.positions.i32()[5] = 7;
  try {
    validate_positions(b.positions);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token 5 has position 7"), std::string::npos) << e.what();
  }
}
