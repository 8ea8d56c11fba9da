#include "models/model.h"

#include "core/rng.h"

namespace frugal {

std::vector<Param*> Model::params() const {
  std::vector<Param*> out;
  for (const auto& block : blocks_) block->collect_params(out);
  return out;
}

std::vector<Param*> Model::state() const {
  std::vector<Param*> out = params();
  collect_buffers(out);
  return out;
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (Param* p : params()) n += p->value.numel();
  return n;
}

int64_t Model::trainable_parameter_count() const {
  int64_t n = 0;
  for (Param* p : params())
    if (p->trainable) n += p->value.numel();
  return n;
}

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

}  // namespace frugal
