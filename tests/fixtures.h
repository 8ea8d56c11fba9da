#pragma once
// DESIGN.md's reference workload model: GPT-2 architecture, 6 layers, dim 256, 8 heads, context 128,
// byte vocabulary (4.84M parameters). The benches pass the same sizes as flags.
#include "models/gpt.h"

namespace frugal::testing {

inline GptConfig reference_workload_gpt() {
  return GptConfig{.n_layer = 6, .n_head = 8, .n_embd = 256, .n_positions = 128, .vocab_size = 256};
}

}  // namespace frugal::testing
