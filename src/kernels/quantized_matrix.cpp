#include "kernels/quantized_matrix.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/quantize8.h"

namespace frugal {

namespace {
// The standard normal quantile, by bisection on erfc in double precision (only for the 16 levels).
double normal_quantile(double p) {
  double lo = -10.0, hi = 10.0;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

std::array<float, 16> derive_nf4_levels() {
  constexpr double kOffset = 0.9677083;  // the paper's: the outermost quantile, (1 - 1/(2*15) + 1 - 1/(2*16)) / 2
  const double top = normal_quantile(kOffset);
  std::array<float, 16> levels{};
  for (int i = 0; i < 7; ++i)  // negative: 7 probabilities from kOffset towards 0.5, 0.5 excluded
    levels[static_cast<size_t>(i)] = static_cast<float>(-normal_quantile(kOffset - i * (kOffset - 0.5) / 7) / top);
  levels[7] = 0.0f;
  for (int i = 0; i < 8; ++i)  // positive: 8 of them
    levels[static_cast<size_t>(15 - i)] = static_cast<float>(normal_quantile(kOffset - i * (kOffset - 0.5) / 8) / top);
  return levels;
}

// The nearest level's index to x in [-1, 1] (midpoints between neighbours decide).
uint8_t nearest_nf4(float x) {
  const std::array<float, 16>& l = nf4_levels();
  uint8_t i = 0;
  while (i < 15 && x > 0.5f * (l[i] + l[i + 1u])) ++i;
  return i;
}

// Per block of n values: absmax and codes. Returns the absmax values.
std::vector<float> quantize_blocks(const float* w, int64_t n, QuantFormat format, uint8_t* codes) {
  const int64_t blocks = n / kQuantBlock;
  std::vector<float> absmax(static_cast<size_t>(blocks));
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const float* x = w + b * kQuantBlock;
    float top = 0.0f;
    for (int64_t i = 0; i < kQuantBlock; ++i) top = std::max(top, std::fabs(x[i]));
    absmax[static_cast<size_t>(b)] = top;
    const float inv = top > 0.0f ? 1.0f / top : 0.0f;
    if (format == QuantFormat::Int8) {
      for (int64_t i = 0; i < kQuantBlock; ++i)
        codes[b * kQuantBlock + i] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(x[i] * inv * 127.0f)));
    } else {
      for (int64_t i = 0; i < kQuantBlock; i += 2)
        codes[(b * kQuantBlock + i) / 2] = static_cast<uint8_t>(nearest_nf4(x[i] * inv) << 4 | nearest_nf4(x[i + 1] * inv));
    }
  }
  return absmax;
}
}  // namespace

std::string quant_format_name(QuantFormat format) { return format == QuantFormat::Nf4 ? "nf4" : "int8"; }

const std::array<float, 16>& nf4_levels() {
  static const std::array<float, 16> levels = derive_nf4_levels();
  return levels;
}

QuantizedMatrix QuantizedMatrix::quantize(const float* w, int64_t rows, int64_t cols, QuantFormat format,
                                          MemCategory category) {
  const int64_t n = rows * cols;
  check(rows > 0 && cols > 0 && n % kQuantBlock == 0,
        "a " + std::to_string(rows) + " x " + std::to_string(cols) + " matrix cannot be quantised in blocks of " +
            std::to_string(kQuantBlock) + " values (" + std::to_string(n) + " is not a multiple)");
  QuantizedMatrix q;
  q.format_ = format;
  q.rows_ = rows;
  q.cols_ = cols;
  const int64_t blocks = n / kQuantBlock;
  q.codes_ = Tensor::empty({format == QuantFormat::Nf4 ? n / 2 : n}, DType::U8, category);
  if (format == QuantFormat::Int8) {
    q.absmax_ = Tensor::empty({blocks}, DType::F32, category);
    if (!w || !q.codes_.has_data()) return q;  // measure mode: the bytes only
    const std::vector<float> absmax = quantize_blocks(w, n, format, q.codes_.u8());
    std::copy(absmax.begin(), absmax.end(), q.absmax_.f32());
    return q;
  }
  q.absmax_ = Tensor::empty({blocks}, DType::U8, category);
  q.absmax_scale_ = Tensor::empty({(blocks + kAbsmaxBlock - 1) / kAbsmaxBlock}, DType::F32, category);
  if (!w || !q.codes_.has_data()) return q;
  std::vector<float> absmax = quantize_blocks(w, n, format, q.codes_.u8());
  double mean = 0.0;
  for (float a : absmax) mean += a;
  q.absmax_mean_ = static_cast<float>(mean / static_cast<double>(blocks));
  for (float& a : absmax) a -= q.absmax_mean_;
  quantize_blockwise(signed_code8(), absmax.data(), blocks, kAbsmaxBlock, q.absmax_.u8(), q.absmax_scale_.f32());
  return q;
}

size_t QuantizedMatrix::nbytes() const {
  return codes_.nbytes() + absmax_.nbytes() + (absmax_scale_.defined() ? absmax_scale_.nbytes() : 0);
}

float QuantizedMatrix::block_scale(int64_t b) const {
  if (format_ == QuantFormat::Int8) return absmax_.f32()[b];
  return signed_code8().value(absmax_.u8()[b]) * absmax_scale_.f32()[b / kAbsmaxBlock] + absmax_mean_;
}

void QuantizedMatrix::dequantize_rows(int64_t r0, int64_t r1, float* out) const {
  check(0 <= r0 && r0 <= r1 && r1 <= rows_, "dequantize_rows: rows out of range");
  const int64_t begin = r0 * cols_, end = r1 * cols_;
  const uint8_t* codes = codes_.u8();
  const std::array<float, 16>& levels = nf4_levels();
  // Blocks straddle rows when cols is not a multiple of the block: walk the range block by block.
  const int64_t first = begin / kQuantBlock, last = (end + kQuantBlock - 1) / kQuantBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = first; b < last; ++b) {
    const float s = block_scale(b);
    const int64_t lo = std::max(begin, b * kQuantBlock), hi = std::min(end, (b + 1) * kQuantBlock);
    if (format_ == QuantFormat::Int8) {
      const float unit = s / 127.0f;
      for (int64_t i = lo; i < hi; ++i) out[i - begin] = static_cast<float>(static_cast<int8_t>(codes[i])) * unit;
    } else {
      for (int64_t i = lo; i < hi; ++i) out[i - begin] = levels[(codes[i / 2] >> (i % 2 ? 0 : 4)) & 15] * s;
    }
  }
}

void quantized_gemm(const float* A, int64_t M, const QuantizedMatrix& W, bool transpose_w, float beta, float* C,
                    float* tile) {
  const int64_t rows = W.rows(), cols = W.cols();
  for (int64_t r0 = 0; r0 < rows; r0 += kTileRows) {
    const int64_t r1 = std::min(rows, r0 + kTileRows), n = r1 - r0;
    W.dequantize_rows(r0, r1, tile);
    if (transpose_w) {  // W stored N x K: these rows are output columns r0..r1 of C = A W^T
      gemm(false, true, M, n, cols, 1.0f, A, cols, tile, cols, beta, C + r0, rows);
    } else {  // W stored K x N: these rows are a slice r0..r1 of the sum over K of C = A W
      gemm(false, false, M, cols, n, 1.0f, A + r0, rows, tile, cols, r0 == 0 ? beta : 1.0f, C, cols);
    }
  }
}

}  // namespace frugal
