#include "kernels/gemm.h"

#include <cblas.h>
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "core/error.h"
#include "kernels/blas_kernel.h"

namespace frugal {

namespace {
// oneDNN serves fp32 products large enough to be worth its threads (not attention's per-head ones,
// which run inside parallel regions anyway) where the CPU rule says it beats OpenBLAS.
bool onednn_serves_f32(int64_t M, int64_t N, int64_t K) {
  static const bool enabled = [] {
    const char* setting = std::getenv("FRUGAL_F32_GEMM");
    if (setting && std::string(setting) == "openblas") return false;
    if (setting && std::string(setting) == "onednn") return true;
    if (!onednn_beats_openblas_f32(this_cpu())) return false;
    const bool correct = sgemm_is_correct([](bool trans_b, int M, int N, int K, const float* A, int lda, const float* B,
                                             int ldb, float* C, int ldc) {
      gemm_onednn_f32(false, trans_b, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
    });
    if (!correct)
      std::fprintf(stderr, "frugal: warning: oneDNN's fp32 matmul failed the check against a plain loop on this CPU; "
                           "fp32 products stay on OpenBLAS\n");
    return correct;
  }();
  return enabled && M * N * K >= (int64_t{1} << 21) && !omp_in_parallel();
}

// BLAS takes 32-bit dimensions: refuse rather than wrap around.
void check_blas_dims(std::initializer_list<int64_t> dims) {
  for (int64_t d : dims)
    check(d <= std::numeric_limits<blasint>::max(), "matrix product too large for BLAS's 32-bit dimensions");
}
}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (onednn_serves_f32(M, N, K)) return gemm_onednn_f32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  check_blas_dims({M, N, K, lda, ldb, ldc});
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
              static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

bool onednn_beats_openblas_f32(const CpuFeatures& cpu) {
  // Measured (bench/gemm_backends, reference workload's shapes, 2 threads): on an Emerald Rapids
  // Xeon oneDNN's fp32 matmul ran 303-314 GFLOP/s against OpenBLAS Cooperlake's 259-291; on AMD's
  // Zen 5 the whole reference step was 1-4% faster with it, inside that machine's noise.
  return cpu.vendor == "GenuineIntel" && cpu.avx512();
}

std::string gemm_kernel(DType dtype) {
  const std::string openblas = "OpenBLAS " + running_openblas_core();
  if (dtype == DType::F32) return onednn_serves_f32(1 << 21, 1, 1) ? "oneDNN " + onednn_f32_implementation() + " (large products), " + openblas : openblas;
  if (has_half_gemm(dtype)) return half_gemm_kernel(dtype);
  const CpuFeatures& cpu = this_cpu();
  const char* setting = std::getenv("FRUGAL_HALF_GEMM");
  const bool off_by_rule = dtype == DType::BF16 && cpu.avx512_bf16 && !bf16_units_pay_off(cpu) &&
                           !(setting && std::string(setting) == "off");
  return gemm_kernel(DType::F32) + " on fp32 copies" + (off_by_rule ? " (AVX512_BF16 without AMX is slower here)" : "");
}

void gemv(bool trans, int64_t M, int64_t N, float alpha, const float* A, int64_t lda, const float* x,
          float beta, float* y) {
  if (M == 0 || N == 0) return;
  check_blas_dims({M, N, lda});
  cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, static_cast<blasint>(M),
              static_cast<blasint>(N), alpha, A, static_cast<blasint>(lda), x, 1, beta, y, 1);
}

}  // namespace frugal
