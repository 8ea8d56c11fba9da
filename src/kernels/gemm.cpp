#include "kernels/gemm.h"

#include <cblas.h>

#include <limits>

#include "core/error.h"
#include "kernels/blas_kernel.h"

namespace frugal {

namespace {
// BLAS takes 32-bit dimensions: refuse rather than wrap around.
void check_blas_dims(std::initializer_list<int64_t> dims) {
  for (int64_t d : dims)
    check(d <= std::numeric_limits<blasint>::max(), "matrix product too large for BLAS's 32-bit dimensions");
}
}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  check_blas_dims({M, N, K, lda, ldb, ldc});
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
              static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

std::string gemm_kernel(DType dtype) {
  const std::string openblas = "OpenBLAS " + running_openblas_core();
  if (dtype == DType::F32) return openblas;
  if (has_half_gemm(dtype)) return half_gemm_kernel(dtype);
  const CpuFeatures& cpu = this_cpu();
  const bool off_by_rule =
      dtype == DType::BF16 && cpu.avx512_bf16 && !bf16_units_pay_off(cpu) && half_gemm_override() != "off";
  return openblas + " on fp32 copies" + (off_by_rule ? " (AVX512_BF16 without AMX is slower here)" : "");
}

void gemv(bool trans, int64_t M, int64_t N, float alpha, const float* A, int64_t lda, const float* x,
          float beta, float* y) {
  if (M == 0 || N == 0) return;
  check_blas_dims({M, N, lda});
  cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, static_cast<blasint>(M),
              static_cast<blasint>(N), alpha, A, static_cast<blasint>(lda), x, 1, beta, y, 1);
}

}  // namespace frugal
