#pragma once
// The LoRA adapter's rank-r products, row-chunked across OpenMP threads. With r = 8 these GEMMs
// are skinny: one multithreaded BLAS call per product re-reads dy or x from memory and splits
// badly across threads. Here each thread takes a chunk of rows and runs the (single-threaded)
// BLAS products on it while the chunk is in cache.
#include <cstdint>

namespace frugal {

// h (rows, r) = x (rows, in) A^T, A (r, in).
void lora_down(int64_t rows, int64_t in, int64_t r, const float* x, const float* a, float* h);

// One backward pass of a LoRA layer over the rows of dy (rows, out) and x (rows, in), a chunk of
// rows per thread at a time, each product a single-threaded BLAS call on data still in cache:
//   h (rows, r) = x A^T             only when `h` is null: the forward did not save it
//   g (rows, r) = dy B
//   dB (out, r) += scale dy^T h     (accumulated transposed, as h^T dy: OpenBLAS packs dy faster
//                                   for that product than for dy^T h)
//   dA (r, in)  += scale g^T x
// Each thread sums its rows' dA and dB^T in its part of `partial`, then the partial sums are added
// in thread order (deterministic).
struct LoraBackward {
  int64_t rows = 0, in = 0, out = 0, r = 0;
  float scale = 1.0f;
  const float* dy = nullptr;  // (rows, out)
  const float* x = nullptr;   // (rows, in), after dropout
  const float* a = nullptr;   // (r, in)
  const float* b = nullptr;   // (out, r)
  const float* h = nullptr;   // (rows, r) saved by the forward, or null
  float* g = nullptr;         // (rows, r) written when set (the unfolded dx needs it), else scratch
  float* da = nullptr;        // (r, in), accumulated
  float* db = nullptr;        // (out, r), accumulated
  float* partial = nullptr;   // per_thread(lora_backward_scratch(in, out, r)) floats
};

// Floats of `partial` scratch the pass needs per OpenMP thread (core/threading.h per_thread).
int64_t lora_backward_scratch(int64_t in, int64_t out, int64_t r);

void lora_backward_pass(const LoraBackward& p);

// W' = W + scale (B A) in W's layout, row-chunked: in_out means W is (in, out) and adds A^T B^T,
// otherwise W is (out, in) and adds B A. `w` may equal `w_out` (in place); otherwise each chunk is
// copied and updated while in cache. A (r, in), B (out, r).
void lora_fold(bool in_out, int64_t in, int64_t out, int64_t r, float scale, const float* w, const float* a,
               const float* b, float* w_out);

}  // namespace frugal
