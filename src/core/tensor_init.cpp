#include "core/tensor_init.h"

#include "core/rng.h"

namespace frugal {

void init_normal(const Tensor& t, uint64_t seed, uint64_t stream, float std) {
  if (!t.has_data()) return;
  float* p = t.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = std * rng_normal(seed, stream, static_cast<uint64_t>(i));
}

void init_uniform(const Tensor& t, uint64_t seed, uint64_t stream, float bound) {
  if (!t.has_data()) return;
  float* p = t.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < t.numel(); ++i)
    p[i] = bound * (2.0f * rng_uniform(seed, stream, static_cast<uint64_t>(i)) - 1.0f);
}

uint64_t name_stream(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  return h;
}

}  // namespace frugal
