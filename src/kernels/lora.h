#pragma once
// The LoRA adapter's rank-r products, row-chunked across OpenMP threads. With r = 8 these GEMMs
// are skinny: one multithreaded BLAS call per product re-reads dy or x from memory and splits
// badly across threads. Here each thread takes a chunk of rows and runs the (single-threaded)
// BLAS products on it while the chunk is in cache.
#include <cstdint>

namespace frugal {

// h (rows, r) = x (rows, in) A^T, A (r, in).
void lora_down(int64_t rows, int64_t in, int64_t r, const float* x, const float* a, float* h);

// Floats of `partial` scratch lora_backward_pass needs per OpenMP thread (core/threading.h per_thread).
int64_t lora_backward_scratch(int64_t in, int64_t out, int64_t r);

// One pass over the rows of dy (rows, out) and x (rows, in), a chunk of rows at a time:
//   h (rows, r) = x A^T, A (r, in)   (only when `h` is null: the forward did not save it)
//   g (rows, r) = dy B,  B (out, r)
//   dB (out, r) += scale dy^T h
//   dA (r, in)  += scale g^T x
// Each thread sums its rows' dA and dB^T (as h^T dy: OpenBLAS packs dy faster for that product
// than for dy^T h) in its part of `partial`, then the partial sums are added in thread order
// (deterministic).
void lora_backward_pass(int64_t rows, int64_t in, int64_t out, int64_t r, float scale, const float* dy,
                        const float* x, const float* a, const float* b, const float* h, float* g, float* da,
                        float* db, float* partial);

// W' = W + scale (B A) in W's layout, row-chunked: in_out means W is (in, out) and adds A^T B^T,
// otherwise W is (out, in) and adds B A. `w` may equal `w_out` (in place); otherwise each chunk is
// copied and updated while in cache. A (r, in), B (out, r).
void lora_fold(bool in_out, int64_t in, int64_t out, int64_t r, float scale, const float* w, const float* a,
               const float* b, float* w_out);

}  // namespace frugal
