#include "linalg/svd.h"

#include <lapacke.h>

#include <algorithm>
#include <string>

#include "core/error.h"
#include "kernels/gemm.h"

namespace frugal {

namespace {
// The thin SVD in double: float inputs of image or weight scale lose several digits in sgesdd,
// while the double factors rounded to float are accurate to float precision.
struct ThinSvd {
  std::vector<double> u, s, vt;  // (rows, p), (p), (p, cols) with p = min(rows, cols)
};

ThinSvd thin_svd(const float* matrix, int64_t rows, int64_t cols, bool with_vectors) {
  check(rows >= 1 && cols >= 1,
        "cannot take the SVD of an empty " + std::to_string(rows) + " x " + std::to_string(cols) + " matrix");
  const int64_t p = std::min(rows, cols);
  std::vector<double> a(matrix, matrix + rows * cols);  // (rows, cols); dgesdd overwrites it
  ThinSvd out;
  out.s.resize(p);
  if (with_vectors) {
    out.u.resize(rows * p);
    out.vt.resize(p * cols);
  }
  // jobz 'S': the first p columns of U and rows of Vt; 'N': singular values only.
  const lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, with_vectors ? 'S' : 'N', rows, cols, a.data(), cols,
                                         out.s.data(), with_vectors ? out.u.data() : nullptr, p,
                                         with_vectors ? out.vt.data() : nullptr, cols);
  check(info == 0, "LAPACK dgesdd failed on a " + std::to_string(rows) + " x " + std::to_string(cols) +
                       " matrix (info " + std::to_string(info) +
                       (info > 0 ? ": the iteration did not converge)" : ": invalid argument)"));
  return out;
}
}  // namespace

TruncatedSvd truncated_svd(const float* matrix, int64_t rows, int64_t cols, int64_t rank,
                           std::vector<double>* all_singular_values) {
  const int64_t p = std::min(rows, cols);
  check(rank >= 1 && rank <= p, "SVD rank " + std::to_string(rank) + " is out of range: a " + std::to_string(rows) +
                                    " x " + std::to_string(cols) + " matrix has ranks 1.." + std::to_string(p));
  const ThinSvd full = thin_svd(matrix, rows, cols, true);
  TruncatedSvd t{rows, cols, rank, std::vector<float>(rows * rank), std::vector<float>(rank),
                 std::vector<float>(rank * cols)};
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t r = 0; r < rank; ++r) t.u[i * rank + r] = static_cast<float>(full.u[i * p + r]);
  for (int64_t r = 0; r < rank; ++r) t.s[r] = static_cast<float>(full.s[r]);
  // The first `rank` rows of Vt are contiguous.
  std::transform(full.vt.begin(), full.vt.begin() + rank * cols, t.vt.begin(),
                 [](double v) { return static_cast<float>(v); });
  if (all_singular_values) *all_singular_values = full.s;
  return t;
}

std::vector<float> reconstruct(const TruncatedSvd& svd, int64_t k) {
  check(k >= 1 && k <= svd.rank, "cannot reconstruct at rank " + std::to_string(k) + " from an SVD truncated at rank " +
                                     std::to_string(svd.rank));
  // U_k diag(S_k): scale the first k columns of U, then one GEMM with the first k rows of Vt.
  std::vector<float> us(svd.rows * k);  // (rows, k)
  for (int64_t i = 0; i < svd.rows; ++i)
    for (int64_t r = 0; r < k; ++r) us[i * k + r] = svd.u[i * svd.rank + r] * svd.s[r];
  std::vector<float> out(svd.rows * svd.cols);  // (rows, cols)
  gemm(false, false, svd.rows, svd.cols, k, 1.0f, us.data(), k, svd.vt.data(), svd.cols, 0.0f, out.data(), svd.cols);
  return out;
}

std::vector<double> singular_values(const float* matrix, int64_t rows, int64_t cols) {
  return thin_svd(matrix, rows, cols, false).s;
}

}  // namespace frugal
