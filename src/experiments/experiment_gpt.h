#pragma once
// The GPT the experiments train: the demo's model (frugal train's defaults: 4 blocks, width 128,
// 4 heads, byte vocabulary) at context 64.
#include "models/gpt.h"

namespace frugal {

constexpr int64_t kExperimentContext = 64;

inline GptConfig experiment_gpt() {
  GptConfig c;  // its defaults are the demo's sizes
  c.n_positions = kExperimentContext;
  return c;
}

}  // namespace frugal
