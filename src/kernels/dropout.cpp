#include "kernels/dropout.h"

#include <algorithm>

#include "core/half.h"
#include "core/rng.h"

namespace frugal {

namespace {

// Keep when the draw's top 24 bits reach p * 2^24 (the draw rng_uniform takes, compared as an integer).
uint32_t threshold(float p) { return static_cast<uint32_t>(static_cast<double>(p) * 16777216.0); }

constexpr int kLanes = 16;  // draws computed together: 64 elements

// philox4x32(key, hi, lo + lane) for 16 consecutive counters, written so the compiler keeps the
// lanes in vector registers (the same arithmetic as core/rng.h, hence the same words).
void philox_block(uint64_t key, uint64_t hi, uint64_t lo, uint32_t (&out)[4][kLanes]) {
  uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const uint64_t counter = lo + static_cast<uint64_t>(l);
    c0[l] = static_cast<uint32_t>(counter);
    c1[l] = static_cast<uint32_t>(counter >> 32);
    c2[l] = static_cast<uint32_t>(hi);
    c3[l] = static_cast<uint32_t>(hi >> 32);
  }
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0[l];
      const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2[l];
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[l] ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = static_cast<uint32_t>(p1);
      c3[l] = static_cast<uint32_t>(p0);
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int l = 0; l < kLanes; ++l) {
    out[0][l] = c0[l];
    out[1][l] = c1[l];
    out[2][l] = c2[l];
    out[3][l] = c3[l];
  }
}

// Calls f(i, keep) for i in [begin, end): element first + i uses word (first + i) % 4 of the draw for
// counter (first + i) / 4, so every element has its own 24 bits and a draw serves four. The draws
// come 16 at a time for aligned windows of 64 elements (the parts outside [begin, end) unused).
template <typename F>
void for_each_mask(const DropoutKey& key, int64_t begin, int64_t end, F f) {
  const uint32_t cut = threshold(key.p);
  constexpr int64_t kWindow = 4 * kLanes;
  uint32_t words[4][kLanes];
  int64_t i = begin;
  while (i < end) {
    const uint64_t e = key.first + static_cast<uint64_t>(i);
    const uint64_t window = e / kWindow * kWindow;  // the window's first element
    philox_block(key.seed, key.stream, window >> 2, words);
    const int64_t stop = std::min<int64_t>(end, i + static_cast<int64_t>(window + kWindow - e));
    for (; i < stop; ++i) {
      const uint64_t at = key.first + static_cast<uint64_t>(i) - window;  // 0 .. 63
      f(i, (words[at & 3][at >> 2] >> 8) >= cut);
    }
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
