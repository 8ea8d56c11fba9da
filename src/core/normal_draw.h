#pragma once
// Normal draws for weight initialisation, many lanes at a time (a random 8B model is 7.5 billion
// of them: one at a time with double-precision log and cos they took 3-4 minutes on 2 cores).
//
// Element i of a stream is a pure function of (seed, stream, i): pair p = i / 2 takes words 0 and 1
// of Philox4x32-10 at counter (stream, p) as u1 in (0, 1] and u2 in [0, 1) with 24 bits each, and
// Box-Muller gives both of its outputs: element 2p = r cos(2 pi u2), element 2p + 1 = r sin(2 pi u2),
// r = sqrt(-2 ln u1) (at most 5.77: u1 >= 2^-24). In fp32 with glibc's vector logf, sinf, cosf
// (libmvec, within 4 ulp), so the same seed gives the same values on one machine and build; another
// CPU's libmvec variant (AVX2 or AVX-512) may differ in the last bits.
#include <cstdint>

namespace frugal {

// out[k] = std * element (first + k) of the stream, k < n. One thread (callers split the range).
void draw_normal(uint64_t seed, uint64_t stream, int64_t first, int64_t n, float std, float* out);

}  // namespace frugal
