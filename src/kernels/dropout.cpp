#include "kernels/dropout.h"

#include <algorithm>

#include "core/half.h"
#include "core/rng.h"

namespace frugal {

namespace {

// Keep when the draw's top 24 bits reach p * 2^24 (the draw rng_uniform takes, compared as an integer).
uint32_t threshold(float p) { return static_cast<uint32_t>(static_cast<double>(p) * 16777216.0); }

// Calls f(i, keep) for i in [begin, end): element first + i uses word (first + i) % 4 of the draw for
// counter (first + i) / 4, so every element has its own 24 bits and a draw serves four.
template <typename F>
void for_each_mask(const DropoutKey& key, int64_t begin, int64_t end, F f) {
  const uint32_t cut = threshold(key.p);
  int64_t i = begin;
  while (i < end) {
    const uint64_t e = key.first + static_cast<uint64_t>(i);
    const auto words = philox4x32(key.seed, key.stream, e >> 2);
    for (uint64_t w = e & 3; w < 4 && i < end; ++w, ++i) f(i, (words[w] >> 8) >= cut);
  }
}

// Chunks of the tensor per thread, aligned to draws.
template <typename F>
void parallel_masks(const DropoutKey& key, int64_t n, F f) {
  constexpr int64_t kChunk = 4096;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < (n + kChunk - 1) / kChunk; ++c)
    for_each_mask(key, c * kChunk, std::min(n, (c + 1) * kChunk), f);
}

}  // namespace

void dropout_apply(const DropoutKey& key, const float* x, float* y, int64_t n) {
  const float scale = 1.0f / (1.0f - key.p);
  parallel_masks(key, n, [&](int64_t i, bool keep) { y[i] = keep ? x[i] * scale : 0.0f; });
}

void dropout_apply_serial(const DropoutKey& key, const float* x, float* y, int64_t n) {
  const float scale = 1.0f / (1.0f - key.p);
  for_each_mask(key, 0, n, [&](int64_t i, bool keep) { y[i] = keep ? x[i] * scale : 0.0f; });
}

void dropout_apply_half(DType type, const DropoutKey& key, const uint16_t* x, uint16_t* y, int64_t n) {
  const float scale = 1.0f / (1.0f - key.p);
  if (type == DType::BF16)
    parallel_masks(key, n, [&](int64_t i, bool keep) { y[i] = f32_to_bf16(keep ? bf16_to_f32(x[i]) * scale : 0.0f); });
  else
    parallel_masks(key, n, [&](int64_t i, bool keep) { y[i] = f32_to_f16(keep ? f16_to_f32(x[i]) * scale : 0.0f); });
}

bool dropout_keeps(const DropoutKey& key, int64_t i) {
  bool kept = false;
  for_each_mask(key, i, i + 1, [&](int64_t, bool keep) { kept = keep; });
  return kept;
}

}  // namespace frugal
