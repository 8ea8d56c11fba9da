#pragma once
// Choosing the next token from one position's logits.
#include <cstdint>
#include <vector>

namespace frugal {

// logits: (V) fp32. temperature 0: the most likely token (the first of equals). Otherwise a draw
// from softmax(logits / temperature) restricted to the top_k most likely (0: all), using value
// `step` of the seed's stream (core/rng.h), so a run's draws depend only on (seed, step).
// probs: scratch, resized to V.
int32_t sample_token(const float* logits, int64_t V, float temperature, int64_t top_k, uint64_t seed, uint64_t step,
                     std::vector<float>& probs);

}  // namespace frugal
