#pragma once
// Choosing the next token from one position's logits.
#include <cstdint>
#include <vector>

namespace frugal {

// logits: (V) fp32. temperature 0: the most likely token (the first of equals). Otherwise a draw
// from softmax(logits / temperature) restricted to the top_k most likely (0: all; every token tied
// with the k-th stays), then to the nucleus of top_p (< 1: the most likely tokens whose probabilities,
// renormalised after top-k, first sum to >= top_p; every token tied with the last one taken stays;
// 1: off), using value `step` of the seed's stream (core/rng.h), so a run's draws depend only on
// (seed, step). probs: scratch, resized to V.
int32_t sample_token(const float* logits, int64_t V, float temperature, int64_t top_k, float top_p, uint64_t seed,
                     uint64_t step, std::vector<float>& probs);

}  // namespace frugal
