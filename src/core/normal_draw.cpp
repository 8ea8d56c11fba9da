// Compiled with -ffast-math (CMakeLists.txt): that is what makes glibc declare its vector math library,
// so the loops below call 16-wide logf, cosf and sinf. Nothing here meets IEEE corner cases: u1 > 0,
// no reductions.
#include "core/normal_draw.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/rng.h"

namespace frugal {

void draw_normal(uint64_t seed, uint64_t stream, int64_t first, int64_t n, float std, float* out) {
  // Whole chunks of kPairs pairs, at multiples of kPairs: every pair goes through the same full-width
  // vector calls however [first, first + n) is cut (a loop's remainder would take narrower variants
  // of logf, sinf and cosf, whose last bits differ).
  constexpr int64_t kPairs = 256;  // the buffers below stay in L1
  constexpr float kTwoPi = 6.28318530717958647692f;
  float radius[kPairs], angle[kPairs], cosines[kPairs], sines[kPairs];
  const int64_t end = first + n;
  for (int64_t p0 = first / 2 / kPairs * kPairs; 2 * p0 < end; p0 += kPairs) {
#pragma omp simd
    for (int64_t p = 0; p < kPairs; ++p) {
      const std::array<uint32_t, 4> w = philox4x32(seed, stream, static_cast<uint64_t>(p0 + p));
      const float u1 = (static_cast<float>(w[0] >> 8) + 1.0f) * (1.0f / 16777216.0f);  // (0, 1]
      const float u2 = static_cast<float>(w[1] >> 8) * (1.0f / 16777216.0f);           // [0, 1)
      radius[p] = std * std::sqrt(-2.0f * logf(u1));
      angle[p] = kTwoPi * u2;
    }
#pragma omp simd
    for (int64_t p = 0; p < kPairs; ++p) cosines[p] = radius[p] * cosf(angle[p]);
#pragma omp simd
    for (int64_t p = 0; p < kPairs; ++p) sines[p] = radius[p] * sinf(angle[p]);
    // Elements 2 p0 .. 2 (p0 + kPairs) - 1, those within [first, end).
    const int64_t lo = std::max(first, 2 * p0), hi = std::min(end, 2 * (p0 + kPairs));
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t p = i / 2 - p0;
      out[i - first] = i % 2 == 0 ? cosines[p] : sines[p];
    }
  }
}

}  // namespace frugal
