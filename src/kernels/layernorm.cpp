#include "kernels/layernorm.h"

#include <omp.h>

#include <cmath>
#include <cstring>

#include "kernels/convert.h"

namespace frugal {

namespace {

// One row: y = (x - mean) * rstd * w + b, mean and rstd returned.
void forward_row(const float* xr, const float* w, const float* b, float* yr, float& mean, float& rstd, int64_t D,
                 float eps) {
  float sum = 0.0f;
  for (int64_t i = 0; i < D; ++i) sum += xr[i];
  const float m = sum / static_cast<float>(D);
  float var = 0.0f;
  for (int64_t i = 0; i < D; ++i) var += (xr[i] - m) * (xr[i] - m);
  const float r = 1.0f / std::sqrt(var / static_cast<float>(D) + eps);
  for (int64_t i = 0; i < D; ++i) yr[i] = (xr[i] - m) * r * w[i] + b[i];
  mean = m;
  rstd = r;
}

// One row's dx, and its dw/db contributions added into the thread's partial sums.
void backward_row(const float* xr, const float* w, float m, float r, const float* dyr, float* dxr, float* dw_part,
                  float* db_part, int64_t D) {
  // dnorm = dy * w; dx = r * (dnorm - mean(dnorm) - xhat * mean(dnorm * xhat))
  float mean_dnorm = 0.0f, mean_dnorm_xhat = 0.0f;
  for (int64_t i = 0; i < D; ++i) {
    const float xhat = (xr[i] - m) * r;
    const float dnorm = dyr[i] * w[i];
    mean_dnorm += dnorm;
    mean_dnorm_xhat += dnorm * xhat;
    dw_part[i] += dyr[i] * xhat;
    db_part[i] += dyr[i];
  }
  mean_dnorm /= static_cast<float>(D);
  mean_dnorm_xhat /= static_cast<float>(D);
  for (int64_t i = 0; i < D; ++i) {
    const float xhat = (xr[i] - m) * r;
    dxr[i] = r * (dyr[i] * w[i] - mean_dnorm - xhat * mean_dnorm_xhat);
  }
}

// The backward's row loop over per-thread partial sums, then the partials added in thread order
// (deterministic for a fixed thread count). row_x(n, thread) and row_dy(n, thread) give row n of x
// and of dy as fp32.
template <typename RowX, typename RowDy>
void backward_rows(RowX row_x, RowDy row_dy, const float* w, const float* mean, const float* rstd, float* dx,
                   float* dw, float* db, int64_t N, int64_t D, float* partials) {
  const int threads = omp_get_max_threads();
  std::memset(partials, 0, sizeof(float) * 2 * D * threads);
#pragma omp parallel
  {
    const int t = omp_get_thread_num();
    float* dw_part = partials + 2 * D * t;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n)
      backward_row(row_x(n, t), w, mean[n], rstd[n], row_dy(n, t), dx + n * D, dw_part, dw_part + D, D);
  }
  for (int t = 0; t < threads; ++t) {
    const float* dw_part = partials + 2 * D * t;
    for (int64_t i = 0; i < D; ++i) {
      dw[i] += dw_part[i];
      db[i] += dw_part[D + i];
    }
  }
}

// row(n, thread): row n of the half matrix v (D wide) widened into the thread's part of `rows`
// (2 * D floats per thread), at `offset` floats into it.
auto widened_rows(DType type, const uint16_t* v, float* rows, int64_t D, int64_t offset) {
  return [=](int64_t n, int t) {
    float* r = rows + 2 * D * t + offset;
    half_to_float(v + n * D, type, r, D);
    return static_cast<const float*>(r);
  };
}

}  // namespace

void layernorm_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                       int64_t N, int64_t D, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) forward_row(x + n * D, w, b, y + n * D, mean[n], rstd[n], D, eps);
}

void layernorm_backward(const float* x, const float* w, const float* mean, const float* rstd, const float* dy,
                        float* dx, float* dw, float* db, int64_t N, int64_t D, float* partials) {
  backward_rows([&](int64_t n, int) { return x + n * D; }, [&](int64_t n, int) { return dy + n * D; }, w, mean, rstd,
                dx, dw, db, N, D, partials);
}

void layernorm_forward_half(DType type, const uint16_t* x, const float* w, const float* b, uint16_t* y, float* mean,
                            float* rstd, int64_t N, int64_t D, float eps, float* rows) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* xr = rows + 2 * D * omp_get_thread_num();
    float* yr = xr + D;
    half_to_float(x + n * D, type, xr, D);
    forward_row(xr, w, b, yr, mean[n], rstd[n], D, eps);
    float_to_half(yr, type, y + n * D, D);
  }
}

void layernorm_backward_half(DType type, const uint16_t* x, const float* w, const float* mean, const float* rstd,
                             const float* dy, float* dx, float* dw, float* db, int64_t N, int64_t D, float* partials,
                             float* rows) {
  const auto row_x = widened_rows(type, x, rows, D, 0);
  backward_rows(row_x, [&](int64_t n, int) { return dy + n * D; }, w, mean, rstd, dx, dw, db, N, D, partials);
}

void layernorm_backward_half(DType type, const uint16_t* x, const float* w, const float* mean, const float* rstd,
                             const uint16_t* dy, float* dx, float* dw, float* db, int64_t N, int64_t D, float* partials,
                             float* rows) {
  const auto row_x = widened_rows(type, x, rows, D, 0);
  const auto row_dy = widened_rows(type, dy, rows, D, D);  // the second half of the thread's rows
  backward_rows(row_x, row_dy, w, mean, rstd, dx, dw, db, N, D, partials);
}

}  // namespace frugal
