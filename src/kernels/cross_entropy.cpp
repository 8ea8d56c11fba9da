#include "kernels/cross_entropy.h"

#include <cmath>

namespace frugal {

double cross_entropy_forward_backward(const float* logits, const int32_t* targets, int64_t N, int64_t V,
                                      double normalizer, float* dlogits) {
  const float inv_norm = static_cast<float>(1.0 / normalizer);
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (int64_t n = 0; n < N; ++n) {
    const float* row = logits + n * V;
    float* drow = dlogits + n * V;
    const int32_t target = targets[n];
    if (target == kIgnoreIndex) {
      for (int64_t v = 0; v < V; ++v) drow[v] = 0.0f;
      continue;
    }
    float mx = row[0];
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, row[v]);
    double sum = 0.0;
    for (int64_t v = 0; v < V; ++v) {
      drow[v] = std::exp(row[v] - mx);
      sum += drow[v];
    }
    total += std::log(sum) + mx - row[target];
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t v = 0; v < V; ++v) drow[v] *= inv * inv_norm;
    drow[target] -= inv_norm;
  }
  return total;
}

int64_t count_counted_targets(const int32_t* targets, int64_t n) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += targets[i] != kIgnoreIndex;
  return count;
}

}  // namespace frugal
