#include "kernels/mse.h"

#include "core/error.h"

namespace frugal {

double mse_forward_backward(const float* pred, const float* target, int64_t n_rows, int64_t n_cols,
                            double normalizer, float* dpred) {
  check(normalizer > 0 && n_cols > 0, "mse: the normalizer and the number of columns must be positive");
  const int64_t n = n_rows * n_cols;
  const double scale = 1.0 / (normalizer * static_cast<double>(n_cols));
  const float grad_scale = static_cast<float>(2.0 * scale);
  double sum = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    const float d = pred[i] - target[i];
    sum += static_cast<double>(d) * d;
    if (dpred) dpred[i] = grad_scale * d;
  }
  return sum * scale;
}

}  // namespace frugal
