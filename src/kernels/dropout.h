#pragma once
// Inverted dropout whose masks are never stored: element e of a tensor is kept when the
// counter-based draw (core/rng.h) for (seed, stream, e) is at least p, and kept values are scaled by
// 1 / (1 - p). The same key regenerates the same mask in backward and in a checkpointing
// recomputation, however the batch is split into micro-batches or ranks (e counts from the
// element's place in the whole optimizer batch).
#include <cstdint>

#include "core/dtype.h"

namespace frugal {

struct DropoutKey {
  uint64_t seed = 0;
  uint64_t stream = 0;  // rng_stream(step, layer, site)
  uint64_t first = 0;   // the index of element 0 of this tensor in the optimizer batch's numbering
  float p = 0.0f;       // drop probability, in [0, 1)
};

// y[i] = kept(i) ? x[i] / (1 - p) : 0. In place when y == x. One Philox draw serves 4 elements.
void dropout_apply(const DropoutKey& key, const float* x, float* y, int64_t n);
// The same on one thread: for callers already inside a parallel region (attention's rows and tiles).
void dropout_apply_serial(const DropoutKey& key, const float* x, float* y, int64_t n);
// The same on fp16/bf16 values (each widened, masked and rounded back to `type`).
void dropout_apply_half(DType type, const DropoutKey& key, const uint16_t* x, uint16_t* y, int64_t n);
// Whether element i is kept (for tests and reference loops).
bool dropout_keeps(const DropoutKey& key, int64_t i);

}  // namespace frugal
