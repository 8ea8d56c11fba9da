#pragma once
// Models the tests share. One tiny GPT (tests that need another size change a field of it), a maker
// for any model from its config and a seed, and DESIGN.md's reference workload.
#include <memory>
#include <random>
#include <vector>

#include "models/gpt.h"
#include "train/gradient_snapshot.h"

namespace frugal::testing {

// n values drawn from N(0, 1) with `seed` (plain vectors, for kernels that take pointers).
inline std::vector<float> normal_values(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = normal(rng);
  return v;
}

// 2 blocks of width 16, 2 heads, context 8, vocabulary 23: a GPT whose every step takes milliseconds.
inline GptConfig tiny_gpt_config() {
  return GptConfig{.n_layer = 2, .n_head = 2, .n_embd = 16, .n_positions = 8, .vocab_size = 23};
}

// Makes a fresh M (Gpt, Mlp, Cnn) from `config`, its weights drawn from `seed`.
template <typename M, typename Config>
ModelMaker model_maker(const Config& config, uint64_t seed) {
  return [config, seed] {
    auto model = std::make_unique<M>(config);
    model->init_weights(seed);
    return std::unique_ptr<Model>(std::move(model));
  };
}

// DESIGN.md's reference workload model: GPT-2 architecture, 6 layers, dim 256, 8 heads, context 128,
// byte vocabulary (4.84M parameters). The benches pass the same sizes as flags.
inline GptConfig reference_workload_gpt() {
  return GptConfig{.n_layer = 6, .n_head = 8, .n_embd = 256, .n_positions = 128, .vocab_size = 256};
}

}  // namespace frugal::testing
