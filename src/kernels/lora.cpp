#include "kernels/lora.h"

#include <omp.h>

#include <algorithm>

#include "kernels/gemm.h"

namespace frugal {

namespace {
// 256 rows of dy at out = 1024 are 1 MiB: the chunk is still in L2 when the second product reads it.
constexpr int64_t kChunkRows = 256;
}  // namespace

void lora_down(int64_t rows, int64_t in, int64_t r, const float* x, const float* a, float* h) {
#pragma omp parallel for schedule(static)
  for (int64_t r0 = 0; r0 < rows; r0 += kChunkRows) {
    const int64_t n = std::min(kChunkRows, rows - r0);
    gemm(false, true, n, r, in, 1.0f, x + r0 * in, in, a, in, 0.0f, h + r0 * r, r);
  }
}

int64_t lora_backward_scratch(int64_t in, int64_t out, int64_t r) {
  return out * r + r * in + 2 * kChunkRows * r;  // dB^T, dA, a chunk's h and g
}

void lora_backward_pass(const LoraBackward& p) {
  const int64_t in = p.in, out = p.out, r = p.r;
  const int64_t per_thread_size = lora_backward_scratch(in, out, r);
  const int threads = omp_get_max_threads();
  std::fill(p.partial, p.partial + threads * per_thread_size, 0.0f);
#pragma omp parallel
  {
    float* my_dbt = p.partial + omp_get_thread_num() * per_thread_size;  // (r, out): dB transposed
    float* my_da = my_dbt + out * r;                                      // (r, in)
    float* my_h = my_da + r * in;                                         // (kChunkRows, r)
    float* my_g = my_h + kChunkRows * r;                                  // (kChunkRows, r)
#pragma omp for schedule(static)
    for (int64_t r0 = 0; r0 < p.rows; r0 += kChunkRows) {
      const int64_t n = std::min(kChunkRows, p.rows - r0);
      const float* dy = p.dy + r0 * out;
      const float* x = p.x + r0 * in;
      const float* h = p.h ? p.h + r0 * r : my_h;
      float* g = p.g ? p.g + r0 * r : my_g;
      if (!p.h) gemm(false, true, n, r, in, 1.0f, x, in, p.a, in, 0.0f, my_h, r);  // h = x A^T
      gemm(false, false, n, r, out, 1.0f, dy, out, p.b, r, 0.0f, g, r);            // g = dy B
      gemm(true, false, r, out, n, p.scale, h, r, dy, out, 1.0f, my_dbt, out);     // dB^T += s h^T dy
      gemm(true, false, r, in, n, p.scale, g, r, x, in, 1.0f, my_da, in);          // dA += s g^T x
    }
  }
  for (int t = 0; t < threads; ++t) {
    const float* part = p.partial + t * per_thread_size;
    for (int64_t o = 0; o < out; ++o)
      for (int64_t k = 0; k < r; ++k) p.db[o * r + k] += part[k * out + o];
    for (int64_t i = 0; i < r * in; ++i) p.da[i] += part[out * r + i];
  }
}

void lora_fold(bool in_out, int64_t in, int64_t out, int64_t r, float scale, const float* w, const float* a,
               const float* b, float* w_out) {
  const int64_t rows = in_out ? in : out, cols = in_out ? out : in;
  // W is only in (or out) rows long: split it evenly so every thread gets a share.
  const int64_t threads = omp_get_max_threads();
  const int64_t chunk = std::max<int64_t>(8, (rows + 4 * threads - 1) / (4 * threads));
#pragma omp parallel for schedule(static)
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    float* dst = w_out + r0 * cols;
    if (w != w_out) std::copy(w + r0 * cols, w + (r0 + n) * cols, dst);
    if (in_out)  // rows r0.. of A^T B^T: A^T's rows are A's columns
      gemm(true, true, n, out, r, scale, a + r0, in, b, r, 1.0f, dst, out);
    else  // rows r0.. of B A
      gemm(false, false, n, in, r, scale, b + r0 * r, r, a, in, 1.0f, dst, in);
  }
}

}  // namespace frugal
