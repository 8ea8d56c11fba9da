#pragma once
// fp16 / bf16 <-> fp32 over arrays, vectorised: F16C instructions 8 values at a time for fp16, loops
// the compiler vectorises (shifts, an integer rounding add) for bf16. Rounding to the half type is
// round-to-nearest-even; fp16 overflow gives inf.
#include <cstdint>

#include "core/dtype.h"

namespace frugal {

void half_to_float(const uint16_t* src, DType src_type, float* dst, int64_t n);
void float_to_half(const float* src, DType dst_type, uint16_t* dst, int64_t n);
// x = float(half(x)) in place: the value a half-precision store would keep.
void round_through_half(float* x, DType half_type, int64_t n);

}  // namespace frugal
