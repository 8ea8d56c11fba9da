#pragma once
// Matrix products through OpenBLAS, row-major, lda/ldb/ldc are row strides in elements.
// Inside an OpenMP parallel region OpenBLAS runs single-threaded, so callers may
// parallelise over independent GEMMs (attention heads) themselves.
#include <cstdint>
#include <string>

#include "core/cpu.h"
#include "core/dtype.h"

namespace frugal {

// C = alpha * op(A) * op(B) + beta * C; op(A) is M x K, op(B) is K x N, C is M x N.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The same product with A and B in `type` (F16 or BF16) and fp32 accumulation into C, on the CPU's
// half-precision units (oneDNN; kernels/gemm_half.cpp). Only where has_half_gemm(type): elsewhere
// layers widen their half tensors and call gemm().
void gemm_half(DType type, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
               int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc);
// `batch` independent products at once (attention's heads): A, B and C of product i start at
// i * stride_a, i * stride_b, i * stride_c elements.
void gemm_half_batched(DType type, int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const uint16_t* A, int64_t lda, int64_t stride_a, const uint16_t* B, int64_t ldb, int64_t stride_b,
                       float beta, float* C, int64_t ldc, int64_t stride_c);
// C (half, rounded from the fp32 sums) = alpha * op(A) * op(B) + bias, bias (N) fp32 or null: a
// layer's output straight in the storage type, without an fp32 copy to round afterwards.
void gemm_half_out(DType type, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                   int64_t lda, const uint16_t* B, int64_t ldb, const float* bias, uint16_t* C, int64_t ldc);
// gemm_half_batched with C in `type` (rounded from the fp32 sums, beta 0): gradients handed on in
// the storage type.
void gemm_half_batched_out(DType type, int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                           float alpha, const uint16_t* A, int64_t lda, int64_t stride_a, const uint16_t* B, int64_t ldb,
                           int64_t stride_b, uint16_t* C, int64_t ldc, int64_t stride_c);
bool has_half_gemm(DType type);
// Whether the CPU's bf16 units beat widening to fp32 around OpenBLAS (has_half_gemm's rule unless
// FRUGAL_HALF_GEMM says otherwise): AMX, or AVX512_BF16 on AMD; not AVX512_BF16 alone on Intel.
bool bf16_units_pay_off(const CpuFeatures& cpu);
// FRUGAL_HALF_GEMM as set: "on" (the half units wherever the CPU has them), "off" (never), or "".
std::string half_gemm_override();
std::string half_gemm_kernel(DType type);  // "oneDNN brg:avx512_core_bf16", or "" without one

// Which kernel serves GEMMs of `dtype` here, for reports: "OpenBLAS Cooperlake", "oneDNN ...", or
// for a half type without one "OpenBLAS Cooperlake on fp32 copies".
std::string gemm_kernel(DType dtype);

// y = alpha * op(A) x + beta * y with A row-major M x N (op = transpose when trans).
void gemv(bool trans, int64_t M, int64_t N, float alpha, const float* A, int64_t lda, const float* x,
          float beta, float* y);

}  // namespace frugal
