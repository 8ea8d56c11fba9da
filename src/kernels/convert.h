#pragma once
// fp16 / bf16 <-> fp32: the one place frugal changes a value's precision.
//
// Arrays, vectorised: F16C instructions 8 values at a time for fp16, loops the compiler vectorises
// (shifts, an integer rounding add) for bf16. Rounding to the half type is round-to-nearest-even;
// fp16 overflow gives inf.
//
// Tensors: every widening (half -> fp32, exact) goes through widen/widen_into and every rounding
// (fp32 -> half) through round_to/round_into/round_in_place. They allocate in measure mode too
// (the planner sees the bytes) and convert only when there is data.
#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"

namespace frugal {

void half_to_float(const uint16_t* src, DType src_type, float* dst, int64_t n);
void float_to_half(const float* src, DType dst_type, uint16_t* dst, int64_t n);
// x = float(half(x)) in place: the value a half-precision store would keep.
void round_through_half(float* x, DType half_type, int64_t n);

// `t` as fp32: `t` itself when it is fp32, otherwise a widened copy in `category`.
Tensor widen(const Tensor& t, MemCategory category = MemCategory::Workspace);
// dst (fp32) = src (fp16 or bf16), equal numel.
void widen_into(const Tensor& src, const Tensor& dst);
// Values widened into fp32 tensors by widen/widen_into in this process so far (with data): how
// tests see that layers on the half units make no fp32 copies of their inputs and weights.
int64_t widened_values();

// `t` (fp32) rounded to `half` (F16 or BF16), in a new tensor in `category`.
Tensor round_to(const Tensor& t, DType half, MemCategory category);
// dst (fp16 or bf16) = src (fp32) rounded, equal numel.
void round_into(const Tensor& src, const Tensor& dst);
// t (fp32) = float(half(t)): rounded to `half` but kept in fp32 storage.
void round_in_place(const Tensor& t, DType half);

bool is_half(DType dtype);  // F16 or BF16

}  // namespace frugal
