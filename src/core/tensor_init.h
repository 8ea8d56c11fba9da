#pragma once
// Weight initialisation from the counter-based RNG: element i of a tensor draws from
// (seed, stream, i), so initialisation is independent of thread count and order.
#include <string>

#include "core/tensor.h"

namespace frugal {

// N(0, std^2), into an fp32 tensor or one born in fp16/bf16 (rounded per element). No-op without
// data (measure mode).
void init_normal(const Tensor& t, uint64_t seed, uint64_t stream, float std);
// U(-bound, bound). No-op without data.
void init_uniform(const Tensor& t, uint64_t seed, uint64_t stream, float bound);
// A stable stream id for a parameter name (FNV-1a), so two parameters with one seed differ.
uint64_t name_stream(const std::string& name);

}  // namespace frugal
