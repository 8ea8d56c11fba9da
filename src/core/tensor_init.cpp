#include "core/tensor_init.h"

#include <algorithm>

#include "core/half.h"
#include "core/normal_draw.h"
#include "core/rng.h"

namespace frugal {

namespace {
// t[i] = value(i), rounded to nearest-even when t is born in a half type: the same bits as drawing
// into fp32 and rounding the tensor afterwards, without an fp32 copy.
template <typename Value>
void fill_elements(const Tensor& t, Value value) {
  const int64_t n = t.numel();
  if (t.dtype() == DType::F16 || t.dtype() == DType::BF16) {
    uint16_t* p = t.u16();
    const bool f16 = t.dtype() == DType::F16;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] = f16 ? f32_to_f16(value(i)) : f32_to_bf16(value(i));
    return;
  }
  float* p = t.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = value(i);
}
}  // namespace

void init_normal(const Tensor& t, uint64_t seed, uint64_t stream, float std) {
  if (!t.has_data()) return;
  // Chunks of draws (core/normal_draw.h), each thread its own; a half tensor's through a small fp32
  // buffer, rounded per element as before.
  constexpr int64_t kChunk = 4096;
  const int64_t n = t.numel();
  const DType dtype = t.dtype();
#pragma omp parallel for schedule(static)
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t count = std::min(kChunk, n - begin);
    if (dtype == DType::F32) {
      draw_normal(seed, stream, begin, count, std, t.f32() + begin);
      continue;
    }
    float drawn[kChunk];
    draw_normal(seed, stream, begin, count, std, drawn);
    uint16_t* p = t.u16() + begin;
    for (int64_t i = 0; i < count; ++i) p[i] = dtype == DType::F16 ? f32_to_f16(drawn[i]) : f32_to_bf16(drawn[i]);
  }
}

void init_uniform(const Tensor& t, uint64_t seed, uint64_t stream, float bound) {
  if (!t.has_data()) return;
  fill_elements(t, [&](int64_t i) { return bound * (2.0f * rng_uniform(seed, stream, static_cast<uint64_t>(i)) - 1.0f); });
}

uint64_t name_stream(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  return h;
}

}  // namespace frugal
