#include "kernels/quantize8.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

namespace frugal {

namespace {
constexpr uint32_t kOneBits = 0x3F800000u;

// The dynamic code's magnitudes, ascending: 0, then decade E = bits - 1 down to 0.
std::vector<float> dynamic_magnitudes(int magnitude_bits) {
  std::vector<float> out{0.0f};
  for (int e = magnitude_bits - 1; e >= 0; --e) {
    const int fraction_bits = magnitude_bits - 1 - e;
    const double levels = std::ldexp(1.0, fraction_bits), decade = std::pow(10.0, -e);
    for (int k = 0; k < static_cast<int>(levels); ++k)
      out.push_back(static_cast<float>(decade * (0.1 + 0.9 * (k + 1) / levels)));
  }
  return out;
}

// Index of the magnitude nearest to m (ascending magnitudes; ties to the larger).
int nearest_magnitude(const std::vector<float>& magnitudes, float m) {
  const auto above = std::lower_bound(magnitudes.begin(), magnitudes.end(), m);
  if (above == magnitudes.begin()) return 0;
  const int i = static_cast<int>(above - magnitudes.begin());
  if (above == magnitudes.end()) return i - 1;
  const double down = static_cast<double>(m) - magnitudes[i - 1], up = static_cast<double>(*above) - m;
  return up <= down ? i : i - 1;
}
}  // namespace

DynamicCode8::DynamicCode8(bool is_signed) : signed_(is_signed), magnitudes_(dynamic_magnitudes(is_signed ? 7 : 8)) {
  const int count = static_cast<int>(magnitudes_.size());
  for (int i = 0; i + 1 < count; ++i) boundaries_.push_back(0.5f * (magnitudes_[i] + magnitudes_[i + 1]));
  const uint32_t buckets = (kOneBits >> kBucketShift) + 1;
  bucket_.resize(buckets);
  for (uint32_t b = 0; b < buckets; ++b) {
    const float lo = std::bit_cast<float>(b << kBucketShift);
    const int i = nearest_magnitude(magnitudes_, lo);
    bucket_[b] = static_cast<uint8_t>(i);
    // The quantiser moves at most one level up from the bucket's start: no second boundary inside.
    const float hi = std::bit_cast<float>((b + 1) << kBucketShift);
    if (i + 1 < count - 1 && boundaries_[i + 1] < hi && b + 1 < buckets)
      throw std::logic_error("dynamic 8-bit code: two decision boundaries in one bucket");
  }
  bucket32_.assign(bucket_.begin(), bucket_.end());
  for (int q = 0; q < 256; ++q)
    values_[q] = signed_ ? (q & 128 ? -magnitudes_[q & 127] : magnitudes_[q & 127]) : magnitudes_[q];
}

void DynamicCode8::quantize_scaled(const float* x, float scale, int64_t n, uint8_t* out) const {
  const int32_t* bucket = bucket32_.data();
  const float* boundary = boundaries_.data();
  const int last = static_cast<int>(magnitudes_.size()) - 1;  // the largest magnitude's index
  const bool is_signed = signed_;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] * scale;
    // magnitude_index of |v| (signed) or of v where positive, else 0 (unsigned; NaN too). Clamped
    // to 1 as `a < 1 ? a : 1`, so a signed NaN reads the table's last bucket, not past its end.
    const float a = is_signed ? std::fabs(v) : (v > 0.0f ? v : 0.0f);
    const float m = a < 1.0f ? a : 1.0f;
    const int start = bucket[std::bit_cast<uint32_t>(m) >> kBucketShift];
    // (& rather than &&: no branches in the lanes)
    const int index = start + static_cast<int>((start < last) & (m >= boundary[std::min(start, last - 1)]));
    const int negative = static_cast<int>(is_signed & (v < 0.0f) & (index > 0));
    out[i] = static_cast<uint8_t>(index | negative << 7);
  }
}

void DynamicCode8::dequantize_scaled(const uint8_t* q, float scale, int64_t n, float* x) const {
  const float* values = values_.data();
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = values[q[i]] * scale;
}

const DynamicCode8& signed_code8() {
  static const DynamicCode8 code(true);
  return code;
}

const DynamicCode8& unsigned_code8() {
  static const DynamicCode8 code(false);
  return code;
}

void quantize_blockwise(const DynamicCode8& code, const float* x, int64_t n, int64_t block, uint8_t* q,
                        float* absmax) {
  const int64_t blocks = (n + block - 1) / block;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * block, end = std::min(n, begin + block);
    float top = 0.0f;
    for (int64_t i = begin; i < end; ++i) top = std::max(top, std::fabs(x[i]));
    absmax[b] = top;
    const float inv = top > 0.0f ? 1.0f / top : 0.0f;
    for (int64_t i = begin; i < end; ++i) q[i] = code.quantize(x[i] * inv);
  }
}

void dequantize_blockwise(const DynamicCode8& code, const uint8_t* q, const float* absmax, int64_t n, int64_t block,
                          float* x) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = code.value(q[i]) * absmax[i / block];
}

}  // namespace frugal
