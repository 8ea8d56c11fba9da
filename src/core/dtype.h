#pragma once
// Element types. f16/bf16 are storage formats: kernels widen to f32, compute, round back.
#include <cstddef>
#include <cstdint>
#include <string>

namespace frugal {

// U8: bytes of quantised state (the 8-bit optimizer's moments).
enum class DType : uint8_t { F32, F16, BF16, I32, U8 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I32: return 4;
    case DType::U8: return 1;
  }
  return 0;
}

std::string dtype_name(DType t);

}  // namespace frugal
