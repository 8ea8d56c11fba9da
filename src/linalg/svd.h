#pragma once
// Truncated singular value decomposition of a dense float matrix through LAPACK (dgesdd, in double
// for accuracy), and the rank-k reconstruction U_k diag(S_k) Vt_k. Used by `frugal svd` (image
// compression) and LoRA extraction (the low-rank part of a fine-tuned delta).
#include <cstdint>
#include <vector>

namespace frugal {

// A ≈ U diag(s) Vt with the `rank` largest singular values.
struct TruncatedSvd {
  int64_t rows = 0, cols = 0, rank = 0;
  std::vector<float> u;   // (rows, rank), row-major, orthonormal columns
  std::vector<float> s;   // (rank), descending, >= 0
  std::vector<float> vt;  // (rank, cols), row-major, orthonormal rows
};

// matrix: (rows, cols), row-major. Error if rank < 1 or rank > min(rows, cols), or if LAPACK fails.
// LAPACK computes every singular value anyway: pass all_singular_values to receive them
// (min(rows, cols), descending) without a second decomposition.
TruncatedSvd truncated_svd(const float* matrix, int64_t rows, int64_t cols, int64_t rank,
                           std::vector<double>* all_singular_values = nullptr);

// U_k diag(S_k) Vt_k for 1 <= k <= svd.rank: (rows, cols), row-major.
std::vector<float> reconstruct(const TruncatedSvd& svd, int64_t k);

// Every singular value of matrix (rows, cols), descending: min(rows, cols) of them.
std::vector<double> singular_values(const float* matrix, int64_t rows, int64_t cols);

}  // namespace frugal
