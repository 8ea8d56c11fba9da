#include "train/sampling.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/rng.h"

namespace frugal {

namespace {
// The k-th largest logit: logits below it are never drawn.
float top_k_threshold(const float* logits, int64_t V, int64_t top_k) {
  if (top_k <= 0 || top_k >= V) return -INFINITY;
  std::vector<float> sorted(logits, logits + V);
  std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<float>());
  return sorted[static_cast<size_t>(top_k - 1)];
}
}  // namespace

int32_t sample_token(const float* logits, int64_t V, float temperature, int64_t top_k, uint64_t seed, uint64_t step,
                     std::vector<float>& probs) {
  if (temperature == 0) return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);
  const float threshold = top_k_threshold(logits, V, top_k);
  const float mx = *std::max_element(logits, logits + V);
  probs.resize(static_cast<size_t>(V));
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) {
    probs[v] = logits[v] < threshold ? 0.0f : std::exp((logits[v] - mx) / temperature);
    sum += probs[v];
  }
  double u = rng_uniform(seed, 0x5A3E, step) * sum;
  for (int64_t v = 0; v < V; ++v) {
    u -= probs[v];
    if (u < 0) return static_cast<int32_t>(v);
  }
  return static_cast<int32_t>(V - 1);
}

}  // namespace frugal
