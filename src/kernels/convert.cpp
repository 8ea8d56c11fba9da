#include "kernels/convert.h"

#include <immintrin.h>

#include <atomic>
#include <bit>

#include "core/error.h"
#include "core/half.h"

namespace frugal {

// fp16 <-> fp32 runs on F16C's vcvtps2ph / vcvtph2ps, 8 values per instruction (round-to-nearest-
// even; overflow gives inf, NaN stays NaN). bf16 is a shift (widen) or an integer rounding add
// (narrow), which the compiler vectorises. Each OpenMP thread converts a contiguous range.
namespace {

constexpr int64_t kGrain = 1 << 14;  // values per parallel chunk: small arrays stay on one thread

template <typename Body>
void parallel_ranges(int64_t n, Body body) {
  if (n <= kGrain) {  // not even a one-thread parallel region: small conversions run inside parallel loops
    body(0, n);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t begin = 0; begin < n; begin += kGrain) body(begin, std::min(n, begin + kGrain));
}

#ifdef __F16C__
void f16_to_f32_range(const uint16_t* src, float* dst, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < end; ++i) dst[i] = f16_to_f32(src[i]);
}

void f32_to_f16_range(const float* src, uint16_t* dst, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < end; ++i) dst[i] = f32_to_f16(src[i]);
}

void f16_round_range(float* x, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8)
    _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
  for (; i < end; ++i) x[i] = f16_to_f32(f32_to_f16(x[i]));
}
#else
#error "frugal's fp16 conversions need F16C (x86-64-v3); build with -march=native on a CPU that has it"
#endif

void bf16_to_f32_range(const uint16_t* src, float* dst, int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) dst[i] = std::bit_cast<float>(static_cast<uint32_t>(src[i]) << 16);
}

void f32_to_bf16_range(const float* src, uint16_t* dst, int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) dst[i] = f32_to_bf16(src[i]);
}

void bf16_round_range(float* x, int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) x[i] = std::bit_cast<float>(static_cast<uint32_t>(f32_to_bf16(x[i])) << 16);
}

std::atomic<int64_t> g_widened_values{0};

void check_half(DType type, const char* what) {
  // (the message only built on failure: these run once per row inside the half-native kernels)
  if (type != DType::F16 && type != DType::BF16) check(false, std::string(what) + ": not a half type");
}

}  // namespace

void half_to_float(const uint16_t* src, DType src_type, float* dst, int64_t n) {
  check_half(src_type, "half_to_float");
  if (src_type == DType::F16) parallel_ranges(n, [&](int64_t b, int64_t e) { f16_to_f32_range(src, dst, b, e); });
  else parallel_ranges(n, [&](int64_t b, int64_t e) { bf16_to_f32_range(src, dst, b, e); });
}

void float_to_half(const float* src, DType dst_type, uint16_t* dst, int64_t n) {
  check_half(dst_type, "float_to_half");
  if (dst_type == DType::F16) parallel_ranges(n, [&](int64_t b, int64_t e) { f32_to_f16_range(src, dst, b, e); });
  else parallel_ranges(n, [&](int64_t b, int64_t e) { f32_to_bf16_range(src, dst, b, e); });
}

void round_through_half(float* x, DType half_type, int64_t n) {
  check_half(half_type, "round_through_half");
  if (half_type == DType::F16) parallel_ranges(n, [&](int64_t b, int64_t e) { f16_round_range(x, b, e); });
  else parallel_ranges(n, [&](int64_t b, int64_t e) { bf16_round_range(x, b, e); });
}

bool is_half(DType dtype) { return dtype == DType::F16 || dtype == DType::BF16; }

Tensor widen(const Tensor& t, MemCategory category) {
  if (t.dtype() == DType::F32) return t;
  Tensor wide = Tensor::empty(t.shape(), DType::F32, category);
  widen_into(t, wide);
  return wide;
}

void widen_into(const Tensor& src, const Tensor& dst) {
  check(is_half(src.dtype()) && dst.dtype() == DType::F32 && src.numel() == dst.numel(),
        "widen: expected an f16/bf16 tensor and an f32 tensor of its size, got " + dtype_name(src.dtype()) + " " +
            src.shape().str() + " and " + dtype_name(dst.dtype()) + " " + dst.shape().str());
  if (!src.has_data() || !dst.has_data()) return;
  half_to_float(src.u16(), src.dtype(), dst.f32(), src.numel());
  g_widened_values += src.numel();
}

int64_t widened_values() { return g_widened_values.load(); }

Tensor round_to(const Tensor& t, DType half, MemCategory category) {
  Tensor rounded = Tensor::empty(t.shape(), half, category);
  round_into(t, rounded);
  return rounded;
}

void round_into(const Tensor& src, const Tensor& dst) {
  check(src.dtype() == DType::F32 && is_half(dst.dtype()) && src.numel() == dst.numel(),
        "round: expected an f32 tensor and an f16/bf16 tensor of its size, got " + dtype_name(src.dtype()) + " " +
            src.shape().str() + " and " + dtype_name(dst.dtype()) + " " + dst.shape().str());
  if (src.has_data() && dst.has_data()) float_to_half(src.f32(), dst.dtype(), dst.u16(), src.numel());
}

void round_in_place(const Tensor& t, DType half) {
  check(t.dtype() == DType::F32, "round_in_place: expected an f32 tensor, got " + dtype_name(t.dtype()));
  if (t.has_data()) round_through_half(t.f32(), half, t.numel());
}

}  // namespace frugal
