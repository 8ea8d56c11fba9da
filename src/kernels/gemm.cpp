#include "kernels/gemm.h"

#include <cblas.h>

#include <vector>

namespace frugal {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
              static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

}  // namespace frugal

namespace frugal {

void gemv(bool trans, int64_t M, int64_t N, float alpha, const float* A, int64_t lda, const float* x,
          float beta, float* y) {
  cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, static_cast<blasint>(M),
              static_cast<blasint>(N), alpha, A, static_cast<blasint>(lda), x, 1, beta, y, 1);
}

void add_column_sums(const float* m, int64_t rows, int64_t cols, float* out) {
  if (rows == 0) return;
  // A row of ones times m, as a GEMV so BLAS does the reduction.
  std::vector<float> ones(static_cast<size_t>(rows), 1.0f);
  gemv(/*trans=*/true, rows, cols, 1.0f, m, cols, ones.data(), 1.0f, out);
}

}  // namespace frugal
