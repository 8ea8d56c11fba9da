#pragma once
// Block-wise 8-bit quantisation with a dynamic (non-linear) code, for optimizer state (Dettmers et al.
// 2022, "8-bit Optimizers via Block-wise Quantization"). A value is stored as one byte naming one of
// the code's levels in [-1, 1] (signed) or [0, 1] (unsigned), times its block's absmax (fp32).
//
// The levels are the paper's dynamic tree code: after the sign bit (signed code only), E leading zero
// bits pick the decade 10^-E, a one bit ends them, and the F bits left pick one of 2^F levels spread
// linearly over that decade: 10^-E (0.1 + 0.9 (k + 1) / 2^F), k = 0 .. 2^F - 1. So 1.0 (the block's
// absmax) is exact, and small values keep their relative precision over seven or eight decades where
// a linear 8-bit code would round them to 0. All zero bits are 0.
//   signed: 7 magnitude bits, E = 0..6 (F = 6..0): 127 magnitudes and 0, each with either sign;
//   unsigned: 8 bits, E = 0..7 (F = 7..0): 255 magnitudes and 0.
// A byte here is the sign bit (signed) and the rank of its magnitude among the code's magnitudes, not
// the bit pattern above: the same level set, numbered so that dequantising is one table lookup.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

namespace frugal {

class DynamicCode8 {
 public:
  explicit DynamicCode8(bool is_signed);

  bool is_signed() const { return signed_; }
  float value(uint8_t q) const { return values_[q]; }
  // The byte whose level is nearest to x (ties to the larger magnitude). x in [-1, 1] (signed) or
  // [0, 1] (unsigned); beyond that it is clamped, and an unsigned code maps negative x to 0.
  uint8_t quantize(float x) const;
  // Arrays, in vector lanes (table gathers; 8-bit AdamW's per-block loops): out[i] =
  // quantize(x[i] * scale), and x[i] = value(q[i]) * scale. The same bytes and values as the scalar forms.
  void quantize_scaled(const float* x, float scale, int64_t n, uint8_t* out) const;
  void dequantize_scaled(const uint8_t* q, float scale, int64_t n, float* x) const;
  // The code's magnitudes, ascending from 0 (128 signed, 256 unsigned).
  const std::vector<float>& magnitudes() const { return magnitudes_; }

 private:
  // Index of the magnitude nearest to m in [0, 1]: the bucket table (indexed by m's exponent and top
  // 8 mantissa bits) names the level nearest to the bucket's lower edge; a bucket (0.4% wide) is
  // narrower than any gap between levels, so at most one decision boundary lies inside it.
  int magnitude_index(float m) const;

  static constexpr int kBucketShift = 15;  // keep the exponent and the top 8 mantissa bits

  bool signed_;
  std::vector<float> magnitudes_;
  std::vector<float> boundaries_;  // midpoints between consecutive magnitudes
  std::vector<uint8_t> bucket_;    // float bits >> 15 -> index of the magnitude nearest the bucket's start
  std::vector<int32_t> bucket32_;  // the same, 32 bits wide: vector gathers load 32-bit elements
  std::array<float, 256> values_{};
};

// Inline: the optimizer quantises two numbers per parameter per step.
inline int DynamicCode8::magnitude_index(float m) const {
  m = m < 1.0f ? m : 1.0f;  // (not std::min, which keeps a NaN and would index past the table)
  const int i = bucket_[std::bit_cast<uint32_t>(m) >> kBucketShift];
  return i + 1 < static_cast<int>(magnitudes_.size()) && m >= boundaries_[i] ? i + 1 : i;
}

inline uint8_t DynamicCode8::quantize(float x) const {
  if (!signed_) return static_cast<uint8_t>(x > 0.0f ? magnitude_index(x) : 0);  // NaN and negatives: 0
  const int i = magnitude_index(std::fabs(x));
  return static_cast<uint8_t>(x < 0.0f && i > 0 ? 128 | i : i);
}

// The two codes, built on first use: signed for Adam's first moment, unsigned for the second.
const DynamicCode8& signed_code8();
const DynamicCode8& unsigned_code8();

// x (n) in blocks of `block`: absmax[b] = max |x| over block b, q[i] = code.quantize(x[i] / absmax).
void quantize_blockwise(const DynamicCode8& code, const float* x, int64_t n, int64_t block, uint8_t* q,
                        float* absmax);
// x[i] = code.value(q[i]) * absmax[i / block].
void dequantize_blockwise(const DynamicCode8& code, const uint8_t* q, const float* absmax, int64_t n, int64_t block,
                          float* x);

}  // namespace frugal
