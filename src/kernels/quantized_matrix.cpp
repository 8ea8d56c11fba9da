#include "kernels/quantized_matrix.h"

#include <cmath>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "core/error.h"
#include "kernels/convert.h"
#include "kernels/gemm.h"
#include "kernels/quantize8.h"

namespace frugal {

double normal_quantile(double p) {
  double lo = -10.0, hi = 10.0;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

namespace {

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

// The midpoints between neighbouring NF4 levels, ascending: they decide the nearest level.
const std::array<float, 15>& nf4_midpoints() {
  static const std::array<float, 15> midpoints = [] {
    const std::array<float, 16>& l = nf4_levels();
    std::array<float, 15> m{};
    for (size_t i = 0; i < 15; ++i) m[i] = 0.5f * (l[i] + l[i + 1]);
    return m;
  }();
  return midpoints;
}

// Codes of one block's kQuantBlock values x (scaled by inv into [-1, 1]): the nearest level's index
// is the number of midpoints below the value, counted in vector lanes (the ties go down).
void nf4_codes(const float* x, float inv, uint8_t* codes) {
  const std::array<float, 15>& mid = nf4_midpoints();
  uint8_t index[kQuantBlock];
#pragma omp simd
  for (int64_t i = 0; i < kQuantBlock; ++i) {
    const float y = x[i] * inv;
    int below = 0;
    for (size_t j = 0; j < 15; ++j) below += y > mid[j] ? 1 : 0;
    index[i] = static_cast<uint8_t>(below);
  }
  for (int64_t i = 0; i < kQuantBlock; i += 2) codes[i / 2] = static_cast<uint8_t>(index[i] << 4 | index[i + 1]);
}

// 16 values (8 code bytes, high nibble first) = levels[code] * scale. With AVX-512 the 16 levels fit
// one register and one permute looks all 16 up; with AVX2 two permutes of 8 and a blend.
inline void dequantize_nf4_16(const uint8_t* codes, const float* levels, float scale, float* out) {
#if defined(__AVX2__)
  const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes));
  const __m128i nibble = _mm_set1_epi8(15);
  const __m128i order = _mm_unpacklo_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), nibble), _mm_and_si128(bytes, nibble));
#if defined(__AVX512F__)
  // (The maskz forms: GCC 12 warns about the plain ones' undefined pass-through operand.)
  const __m512i idx = _mm512_maskz_cvtepu8_epi32(0xFFFF, order);
  const __m512 values = _mm512_maskz_permutexvar_ps(0xFFFF, idx, _mm512_loadu_ps(levels));
  _mm512_storeu_ps(out, _mm512_mul_ps(values, _mm512_set1_ps(scale)));
#else
  const __m256 low = _mm256_loadu_ps(levels), high = _mm256_loadu_ps(levels + 8), s = _mm256_set1_ps(scale);
  for (int half = 0; half < 2; ++half) {
    const __m256i idx = _mm256_cvtepu8_epi32(half ? _mm_srli_si128(order, 8) : order);
    const __m256 upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7)));
    const __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(low, idx), _mm256_permutevar8x32_ps(high, idx), upper);
    _mm256_storeu_ps(out + 8 * half, _mm256_mul_ps(v, s));
  }
#endif
#else
  for (int i = 0; i < 16; ++i) out[i] = levels[(codes[i / 2] >> (i % 2 ? 0 : 4)) & 15] * scale;
#endif
}

// Codes of one block's kQuantBlock values: round(x * inv * 127), halves away from zero (lround's
// rule, in vector lanes: the fraction q - trunc(q) is exact).
void int8_codes(const float* x, float inv, uint8_t* codes) {
  int32_t rounded[kQuantBlock];
#pragma omp simd
  for (int64_t i = 0; i < kQuantBlock; ++i) {
    const float q = x[i] * inv * 127.0f;
    const int32_t whole = static_cast<int32_t>(q);  // towards zero
    const float fraction = q - static_cast<float>(whole);
    rounded[i] = whole + (fraction >= 0.5f ? 1 : 0) - (fraction <= -0.5f ? 1 : 0);
  }
  for (int64_t i = 0; i < kQuantBlock; ++i) codes[i] = static_cast<uint8_t>(static_cast<int8_t>(rounded[i]));
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
      int8_codes(x, inv, codes + b * kQuantBlock);
    } else {
      nf4_codes(x, inv, codes + b * kQuantBlock / 2);
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

QuantizedMatrix QuantizedMatrix::allocate(int64_t rows, int64_t cols, QuantFormat format, MemCategory category) {
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
  } else {
    q.absmax_ = Tensor::empty({blocks}, DType::U8, category);
    q.absmax_scale_ = Tensor::empty({(blocks + kAbsmaxBlock - 1) / kAbsmaxBlock}, DType::F32, category);
  }
  return q;
}

void QuantizedMatrix::store_absmax(std::vector<float> absmax) {
  const int64_t blocks = static_cast<int64_t>(absmax.size());
  if (format_ == QuantFormat::Int8) {
    std::copy(absmax.begin(), absmax.end(), absmax_.f32());
    return;
  }
  double mean = 0.0;
  for (float a : absmax) mean += a;
  absmax_mean_ = static_cast<float>(mean / static_cast<double>(blocks));
  for (float& a : absmax) a -= absmax_mean_;
  quantize_blockwise(signed_code8(), absmax.data(), blocks, kAbsmaxBlock, absmax_.u8(), absmax_scale_.f32());
}

QuantizedMatrix QuantizedMatrix::quantize(const float* w, int64_t rows, int64_t cols, QuantFormat format,
                                          MemCategory category) {
  QuantizedMatrix q = allocate(rows, cols, format, category);
  if (!w || !q.codes_.has_data()) return q;  // measure mode: the bytes only
  q.store_absmax(quantize_blocks(w, rows * cols, format, q.codes_.u8()));
  return q;
}

QuantizedMatrix QuantizedMatrix::quantize_by_rows(int64_t rows, int64_t cols, QuantFormat format, int64_t chunk_rows,
                                                  const RowReader& read, MemCategory category) {
  QuantizedMatrix q = allocate(rows, cols, format, category);
  const int64_t whole_blocks = (std::max<int64_t>(chunk_rows, 1) + kQuantBlock - 1) / kQuantBlock * kQuantBlock;
  const int64_t chunk = std::min(rows, whole_blocks);  // rows per read
  // Allocated in measure mode too, so that the plan holds it (the head is quantised while the model is built).
  Tensor buffer = Tensor::empty({chunk, cols}, DType::F32, MemCategory::Workspace);  // (chunk, cols)
  if (!q.codes_.has_data()) return q;
  std::vector<float> absmax;
  absmax.reserve(static_cast<size_t>(rows * cols / kQuantBlock));
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk);
    read(r0, r1, buffer.f32());
    // chunk * cols is a multiple of kQuantBlock, so the chunk's first value starts a block.
    uint8_t* codes = q.codes_.u8() + (format == QuantFormat::Nf4 ? r0 * cols / 2 : r0 * cols);
    const std::vector<float> part = quantize_blocks(buffer.f32(), (r1 - r0) * cols, format, codes);
    absmax.insert(absmax.end(), part.begin(), part.end());
  }
  q.store_absmax(std::move(absmax));
  return q;
}

size_t QuantizedMatrix::nbytes() const {
  return codes_.nbytes() + absmax_.nbytes() + (absmax_scale_.defined() ? absmax_scale_.nbytes() : 0);
}

namespace {
// nf4 block b's absmax from its stored parts: the 8-bit code of (absmax - mean) times its group's
// scale, plus the mean.
inline float nf4_block_scale(const DynamicCode8& code, const uint8_t* absmax_codes, const float* scales, float mean,
                             int64_t b) {
  return code.value(absmax_codes[b]) * scales[b / kAbsmaxBlock] + mean;
}
}  // namespace

float QuantizedMatrix::block_scale(int64_t b) const {
  if (format_ == QuantFormat::Int8) return absmax_.f32()[b];
  return nf4_block_scale(signed_code8(), absmax_.u8(), absmax_scale_.f32(), absmax_mean_, b);
}

void QuantizedMatrix::dequantize_rows(int64_t r0, int64_t r1, float* out) const { dequantize_panel(r0, r1, 0, cols_, out); }

void QuantizedMatrix::dequantize_panel(int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* out) const {
  check(0 <= r0 && r0 <= r1 && r1 <= rows_ && 0 <= c0 && c0 <= c1 && c1 <= cols_, "dequantize_panel: out of range");
  const int64_t width = c1 - c0;
#pragma omp parallel for schedule(static)
  for (int64_t r = r0; r < r1; ++r) dequantize_range(r * cols_ + c0, r * cols_ + c1, out + (r - r0) * width);
}

void QuantizedMatrix::dequantize_panel_half(int64_t r0, int64_t r1, int64_t c0, int64_t c1, DType half,
                                            uint16_t* out) const {
  check(0 <= r0 && r0 <= r1 && r1 <= rows_ && 0 <= c0 && c0 <= c1 && c1 <= cols_, "dequantize_panel_half: out of range");
  check(is_half(half), "dequantize_panel_half: the tile's type must be fp16 or bf16");
  // Chunks end on multiples of kChunk in the stored order, so whole blocks take the fast path.
  constexpr int64_t kChunk = 4 * kQuantBlock;
  const int64_t width = c1 - c0;
#pragma omp parallel for schedule(static)
  for (int64_t r = r0; r < r1; ++r) {
    float buffer[kChunk];
    const int64_t begin = r * cols_ + c0, end = r * cols_ + c1;
    uint16_t* row = out + (r - r0) * width;
    for (int64_t lo = begin; lo < end;) {
      const int64_t hi = std::min(end, (lo / kChunk + 1) * kChunk);
      dequantize_range(lo, hi, buffer);
      float_to_half(buffer, half, row + (lo - begin), hi - lo);
      lo = hi;
    }
  }
}

void QuantizedMatrix::dequantize_range(int64_t begin, int64_t end, float* out) const {
  // (The tensors' pointers and the absmax code once per range, not per block: a half tile calls this
  // for every 256 values.)
  const uint8_t* codes = codes_.u8();
  const std::array<float, 16>& levels = nf4_levels();
  const bool int8 = format_ == QuantFormat::Int8;
  const float* absmax = int8 ? absmax_.f32() : nullptr;
  const uint8_t* absmax_codes = int8 ? nullptr : absmax_.u8();
  const float* scales = int8 ? nullptr : absmax_scale_.f32();
  const DynamicCode8& code = signed_code8();
  // Blocks may straddle rows and panel edges: walk the range block by block.
  for (int64_t b = begin / kQuantBlock; b * kQuantBlock < end; ++b) {
    const float s = int8 ? absmax[b] : nf4_block_scale(code, absmax_codes, scales, absmax_mean_, b);
    const int64_t lo = std::max(begin, b * kQuantBlock), hi = std::min(end, (b + 1) * kQuantBlock);
    if (int8) {
      const float unit = s / 127.0f;
      for (int64_t i = lo; i < hi; ++i) out[i - begin] = static_cast<float>(static_cast<int8_t>(codes[i])) * unit;
    } else if (lo == b * kQuantBlock && hi == lo + kQuantBlock) {  // a whole block: 16 values at a time
      for (int64_t i = lo; i < hi; i += 16) dequantize_nf4_16(codes + i / 2, levels.data(), s, out + (i - begin));
    } else {
      for (int64_t i = lo; i < hi; ++i) out[i - begin] = levels[(codes[i / 2] >> (i % 2 ? 0 : 4)) & 15] * s;
    }
  }
}

int64_t quantized_panel_columns(const QuantizedMatrix& w, int64_t tile_rows) {
  const int64_t budget = std::min(tile_rows, w.rows()) * w.cols();  // the transposed product's tile
  return std::min(w.cols(), std::max<int64_t>(tile_rows, budget / w.rows() / kQuantBlock * kQuantBlock));
}

namespace {
int64_t tile_values(const QuantizedMatrix& w, int64_t tile_rows) {
  return std::max(std::min(tile_rows, w.rows()) * w.cols(), w.rows() * quantized_panel_columns(w, tile_rows));
}
}  // namespace

int64_t quantized_gemm_tile_floats(const QuantizedMatrix& w) { return tile_values(w, kTileRows); }

int64_t quantized_gemm_half_tile_values(const QuantizedMatrix& w) { return tile_values(w, kHalfTileRows); }

void quantized_gemm(const float* A, int64_t M, const QuantizedMatrix& W, bool transpose_w, float beta, float* C,
                    float* tile) {
  const int64_t rows = W.rows(), cols = W.cols();
  if (transpose_w) {  // W stored N x K: stored rows r0..r1 are output columns r0..r1 of C = A W^T
    for (int64_t r0 = 0; r0 < rows; r0 += kTileRows) {
      const int64_t r1 = std::min(rows, r0 + kTileRows);
      W.dequantize_rows(r0, r1, tile);
      gemm(false, true, M, r1 - r0, cols, 1.0f, A, cols, tile, cols, beta, C + r0, rows);
    }
    return;
  }
  // W stored K x N: a panel of all K rows and columns c0..c1 gives C's columns c0..c1 in one product
  // (tiles along K would pass over all of C once per tile).
  const int64_t width = quantized_panel_columns(W);
  for (int64_t c0 = 0; c0 < cols; c0 += width) {
    const int64_t c1 = std::min(cols, c0 + width);
    W.dequantize_panel(0, rows, c0, c1, tile);
    gemm(false, false, M, c1 - c0, rows, 1.0f, A, rows, tile, c1 - c0, beta, C + c0, cols);
  }
}

namespace {

// The tiles of a product against W, in `half`: calls product(tile, first, last) with C's columns
// [first, last) for each, whose operand is that tile as stored (transpose_w: tile rows x K, each row
// a column of C; otherwise K x (last - first)).
template <typename Product>
void for_each_half_tile(const QuantizedMatrix& W, bool transpose_w, DType half, uint16_t* tile, Product product) {
  const int64_t rows = W.rows(), cols = W.cols();
  if (transpose_w) {
    for (int64_t r0 = 0; r0 < rows; r0 += kHalfTileRows) {
      const int64_t r1 = std::min(rows, r0 + kHalfTileRows);
      W.dequantize_panel_half(r0, r1, 0, cols, half, tile);
      product(tile, r0, r1);
    }
    return;
  }
  const int64_t width = quantized_panel_columns(W, kHalfTileRows);
  for (int64_t c0 = 0; c0 < cols; c0 += width) {
    const int64_t c1 = std::min(cols, c0 + width);
    W.dequantize_panel_half(0, rows, c0, c1, half, tile);
    product(tile, c0, c1);
  }
}

}  // namespace

void quantized_gemm_half(DType half, const uint16_t* A, int64_t M, const QuantizedMatrix& W, bool transpose_w, float beta,
                         float* C, uint16_t* tile) {
  const int64_t N = transpose_w ? W.rows() : W.cols(), K = transpose_w ? W.cols() : W.rows();
  for_each_half_tile(W, transpose_w, half, tile, [&](const uint16_t* t, int64_t first, int64_t last) {
    const int64_t ldt = transpose_w ? K : last - first;
    gemm_half(half, false, transpose_w, M, last - first, K, 1.0f, A, K, t, ldt, beta, C + first, N);
  });
}

void quantized_gemm_half_out(DType half, const uint16_t* A, int64_t M, const QuantizedMatrix& W, bool transpose_w,
                             const float* bias, uint16_t* C, uint16_t* tile) {
  const int64_t N = transpose_w ? W.rows() : W.cols(), K = transpose_w ? W.cols() : W.rows();
  for_each_half_tile(W, transpose_w, half, tile, [&](const uint16_t* t, int64_t first, int64_t last) {
    const int64_t ldt = transpose_w ? K : last - first;
    gemm_half_out(half, false, transpose_w, M, last - first, K, 1.0f, A, K, t, ldt, bias ? bias + first : nullptr,
                  C + first, N);
  });
}

}  // namespace frugal
