#pragma once
// Scalar fp16/bf16 <-> fp32 conversions, round-to-nearest-even, inf/NaN preserved.
// Used for file I/O; hot-path vectorised conversions belong in kernels/.
#include <cstdint>
#include <cstring>
#include <immintrin.h>

namespace frugal {

// F16C's scalar conversions (GCC and clang alike; clang 14 has no _Float16 on x86).
inline float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

inline uint16_t f32_to_f16(float f) {
  return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);  // IEEE round-to-nearest-even, overflow -> inf
}

inline float bf16_to_f32(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // quiet NaN
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);  // ties to even
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

}  // namespace frugal
