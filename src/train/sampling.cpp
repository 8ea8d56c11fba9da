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

// Zeroes the probabilities outside the nucleus of `top_p` (probs unnormalised, summing to `sum`) and
// returns the sum of those kept. A full sort of the candidates per token: O(V log V), a few
// milliseconds for a 150k vocabulary, small beside the forward pass of a real model.
double keep_nucleus(std::vector<float>& probs, double sum, float top_p) {
  std::vector<float> sorted;
  for (float p : probs)
    if (p > 0) sorted.push_back(p);
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  const double target = static_cast<double>(top_p) * sum;
  double running = 0;
  float last = sorted.empty() ? 0.0f : sorted.back();
  for (float p : sorted) {
    running += p;
    if (running >= target) {
      last = p;
      break;
    }
  }
  double kept = 0;
  for (float& p : probs) {
    if (p < last) p = 0;  // ties with the last token taken stay, as top-k keeps ties with the k-th
    kept += p;
  }
  return kept;
}
}  // namespace

int32_t sample_token(const float* logits, int64_t V, float temperature, int64_t top_k, float top_p, uint64_t seed,
                     uint64_t step, std::vector<float>& probs) {
  if (temperature == 0) return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);
  const float threshold = top_k_threshold(logits, V, top_k);
  const float mx = *std::max_element(logits, logits + V);
  probs.resize(static_cast<size_t>(V));
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) {
    probs[v] = logits[v] < threshold ? 0.0f : std::exp((logits[v] - mx) / temperature);
    sum += probs[v];
  }
  if (top_p < 1) sum = keep_nucleus(probs, sum, top_p);
  double u = rng_uniform(seed, 0x5A3E, step) * sum;
  int64_t last = 0;  // rounding may leave u >= 0 after the last candidate: then that one
  for (int64_t v = 0; v < V; ++v) {
    if (probs[v] == 0) continue;
    u -= probs[v];
    last = v;
    if (u < 0) return static_cast<int32_t>(v);
  }
  return static_cast<int32_t>(last);
}

}  // namespace frugal
