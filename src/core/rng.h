#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11): a value is a pure function
// of (seed, stream, index), so a recomputed dropout mask or a re-initialised weight is identical
// no matter in which order or on which thread it is drawn.
#include <array>
#include <cmath>
#include <cstdint>

namespace frugal {

inline std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo) {
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

// Combines identifiers (step, micro-batch, layer, ...) into one stream id.
inline uint64_t rng_stream(uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  uint64_t h = a * 0x9E3779B97F4A7C15ull;
  h ^= (b + 0x632BE59BD9B4E019ull + (h << 6) + (h >> 2));
  h ^= (c + 0x85EBCA77C2B2AE63ull + (h << 6) + (h >> 2));
  return h;
}

// Uniform in [0, 1) with 24 random bits.
inline float rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return static_cast<float>(philox4x32(seed, stream, index)[0] >> 8) * (1.0f / 16777216.0f);
}

// Standard normal (Box-Muller on two words of the same draw).
inline float rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  auto w = philox4x32(seed, stream, index);
  const double u1 = (static_cast<double>(w[0]) + 1.0) / 4294967297.0;  // (0, 1]
  const double u2 = static_cast<double>(w[1]) / 4294967296.0;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace frugal
