#pragma once
// Autoregressive sampling from a GPT (byte-level tokens).
#include <string>

#include "models/gpt.h"

namespace frugal {

struct SampleOptions {
  int64_t tokens = 200;
  float temperature = 0.8f;
  int64_t top_k = 0;  // 0: sample from the whole distribution
  uint64_t seed = 0;
};

// Continues `prompt` (bytes as token ids) by options.tokens tokens; returns only the continuation.
// The context window slides when prompt + continuation exceed the model's n_positions.
std::string generate_text(Gpt& model, const std::string& prompt, const SampleOptions& options);

}  // namespace frugal
