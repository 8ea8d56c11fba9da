#include "kernels/dropout.h"

#include <algorithm>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "core/half.h"
#include "core/rng.h"

namespace frugal {

namespace {

// Keep when the draw's top 24 bits reach p * 2^24 (the draw rng_uniform takes, compared as an integer).
uint32_t threshold(float p) { return static_cast<uint32_t>(static_cast<double>(p) * 16777216.0); }

constexpr int kLanes = 16;  // draws computed together: 64 elements

// philox4x32(key, hi, lo + lane) for 16 consecutive counters (the same arithmetic as core/rng.h, hence
// the same words). Each round multiplies two words by 32-bit constants into 64-bit products: with
// AVX-512 or AVX2 the products come from the 32 x 32 -> 64 multiplies of even and odd lanes
// (vpmuludq); left to the compiler they became 64-bit multiplies (vpmullq, three times the uops).
#if defined(__AVX512F__)
// hi and lo halves of the 16 products a * m.
// (The maskz forms with every lane set: GCC 12 warns about the plain ones' undefined pass-through.)
inline void mul_wide(__m512i a, __m512i m, __m512i& hi, __m512i& lo) {
  constexpr __mmask8 all = 0xFF;
  const __m512i even = _mm512_maskz_mul_epu32(all, a, m);  // lanes 0, 2, ..
  const __m512i odd =
      _mm512_maskz_mul_epu32(all, _mm512_maskz_srli_epi64(all, a, 32), _mm512_maskz_srli_epi64(all, m, 32));  // 1, 3, ..
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_maskz_srli_epi64(all, even, 32), odd);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_maskz_slli_epi64(all, odd, 32));
}

void philox_block(uint64_t key, uint64_t hi, uint64_t lo, uint32_t (&out)[4][kLanes]) {
  alignas(64) uint32_t c0s[kLanes], c1s[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const uint64_t counter = lo + static_cast<uint64_t>(l);
    c0s[l] = static_cast<uint32_t>(counter);
    c1s[l] = static_cast<uint32_t>(counter >> 32);
  }
  __m512i c0 = _mm512_load_si512(c0s), c1 = _mm512_load_si512(c1s);
  __m512i c2 = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(hi)));
  __m512i c3 = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(hi >> 32)));
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(0xD2511F53u)), m1 = _mm512_set1_epi32(static_cast<int>(0xCD9E8D57u));
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    __m512i hi0, lo0, hi1, lo1;
    mul_wide(c0, m0, hi0, lo0);
    mul_wide(c2, m1, hi1, lo1);
    c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(static_cast<int>(k0)));
    c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(static_cast<int>(k1)));
    c1 = lo1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  _mm512_storeu_si512(out[0], c0);
  _mm512_storeu_si512(out[1], c1);
  _mm512_storeu_si512(out[2], c2);
  _mm512_storeu_si512(out[3], c3);
}
#else
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
#endif

// Calls f(i, n, keep) for consecutive spans of [begin, end): keep[j] (0 or 1) says whether element
// i + j is kept. Element first + i uses word (first + i) % 4 of the draw for counter (first + i) / 4,
// so every element has its own 24 bits and a draw serves four. The draws come 16 at a time for
// aligned windows of 64 elements (the parts outside [begin, end) unused); each window's flags are
// laid out in element order first, so that the callers' loops over a span vectorise.
template <typename F>
void for_each_mask(const DropoutKey& key, int64_t begin, int64_t end, F f) {
  const uint32_t cut = threshold(key.p);
  constexpr int64_t kWindow = 4 * kLanes;
  uint32_t words[4][kLanes];
  uint32_t keep[kWindow];
  int64_t i = begin;
  while (i < end) {
    const uint64_t e = key.first + static_cast<uint64_t>(i);
    const uint64_t window = e / kWindow * kWindow;  // the window's first element
    philox_block(key.seed, key.stream, window >> 2, words);
    for (int w = 0; w < 4; ++w)
      for (int l = 0; l < kLanes; ++l) keep[4 * l + w] = (words[w][l] >> 8) >= cut;
    const int64_t at = static_cast<int64_t>(e - window);  // i's place in the window
    const int64_t n = std::min<int64_t>(end - i, kWindow - at);
    f(i, n, keep + at);
    i += n;
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

// y = keep ? x * scale : 0 over one span (fp32).
struct MaskFloats {
  const float* x;
  float* y;
  float scale;
  void operator()(int64_t i, int64_t n, const uint32_t* keep) const {
    const float* xs = x + i;
    float* ys = y + i;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) ys[j] = keep[j] ? xs[j] * scale : 0.0f;
  }
};

}  // namespace

void dropout_apply(const DropoutKey& key, const float* x, float* y, int64_t n) {
  parallel_masks(key, n, MaskFloats{x, y, 1.0f / (1.0f - key.p)});
}

void dropout_apply_serial(const DropoutKey& key, const float* x, float* y, int64_t n) {
  for_each_mask(key, 0, n, MaskFloats{x, y, 1.0f / (1.0f - key.p)});
}

void dropout_apply_half(DType type, const DropoutKey& key, const uint16_t* x, uint16_t* y, int64_t n) {
  const float scale = 1.0f / (1.0f - key.p);
  const bool bf16 = type == DType::BF16;
  parallel_masks(key, n, [&](int64_t i, int64_t count, const uint32_t* keep) {
    for (int64_t j = 0; j < count; ++j) {
      const float v = bf16 ? bf16_to_f32(x[i + j]) : f16_to_f32(x[i + j]);
      const float out = keep[j] ? v * scale : 0.0f;
      y[i + j] = bf16 ? f32_to_bf16(out) : f32_to_f16(out);
    }
  });
}

bool dropout_keeps(const DropoutKey& key, int64_t i) {
  bool kept = false;
  for_each_mask(key, i, i + 1, [&](int64_t, int64_t, const uint32_t* keep) { kept = keep[0] != 0; });
  return kept;
}

}  // namespace frugal
