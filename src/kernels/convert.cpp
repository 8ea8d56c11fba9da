#include "kernels/convert.h"

#include <bit>

#include "core/error.h"
#include "core/half.h"

namespace frugal {

void half_to_float(const uint16_t* src, DType src_type, float* dst, int64_t n) {
  check(src_type == DType::F16 || src_type == DType::BF16, "half_to_float: not a half type");
  if (src_type == DType::F16) {
    const _Float16* h = reinterpret_cast<const _Float16*>(src);
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(h[i]);
  } else {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(static_cast<uint32_t>(src[i]) << 16);
  }
}

void float_to_half(const float* src, DType dst_type, uint16_t* dst, int64_t n) {
  check(dst_type == DType::F16 || dst_type == DType::BF16, "float_to_half: not a half type");
  if (dst_type == DType::F16) {
    _Float16* h = reinterpret_cast<_Float16*>(dst);
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) h[i] = static_cast<_Float16>(src[i]);
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
  }
}

void round_through_half(float* x, DType half_type, int64_t n) {
  check(half_type == DType::F16 || half_type == DType::BF16, "round_through_half: not a half type");
  if (half_type == DType::F16) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(static_cast<_Float16>(x[i]));
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) x[i] = std::bit_cast<float>(static_cast<uint32_t>(f32_to_bf16(x[i])) << 16);
  }
}

}  // namespace frugal
