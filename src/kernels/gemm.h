#pragma once
// Matrix products through OpenBLAS, row-major, lda/ldb/ldc are row strides in elements.
// Inside an OpenMP parallel region OpenBLAS runs single-threaded, so callers may
// parallelise over independent GEMMs (attention heads) themselves.
#include <cstdint>

namespace frugal {

// C = alpha * op(A) * op(B) + beta * C; op(A) is M x K, op(B) is K x N, C is M x N.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// y = alpha * op(A) x + beta * y with A row-major M x N (op = transpose when trans).
void gemv(bool trans, int64_t M, int64_t N, float alpha, const float* A, int64_t lda, const float* x,
          float beta, float* y);

}  // namespace frugal
