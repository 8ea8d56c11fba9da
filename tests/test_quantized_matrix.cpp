// 4- and 8-bit frozen weights (kernels/quantized_matrix.h, issue 19): the NF4 levels are the
// published ones; every block's quantise-dequantise error is within the bound its format implies;
// the bytes are the format's; a product against a quantised W, dequantised tile by tile, equals the
// product against its fully dequantised copy to fp32 rounding, on the half units its bf16-rounded copy.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/ledger.h"
#include "fixtures.h"
#include "kernels/convert.h"
#include "kernels/gemm.h"
#include "kernels/quantize8.h"
#include "kernels/quantized_matrix.h"
#include "tolerances.h"

using namespace frugal;
using frugal::testing::gamma_n;
using frugal::testing::kBf16Unit;
using frugal::testing::kFp32Unit;

namespace {
// N(0, 1) values with a few outliers (as trained weights have), `n` of them.
std::vector<float> weights(int64_t n, uint64_t seed) {
  std::vector<float> w = frugal::testing::normal_values(n, seed);
  for (int64_t i = 0; i < n; i += 997) w[static_cast<size_t>(i)] *= 12.0f;
  return w;
}

// The standard normal density (its quantile: kernels/quantized_matrix.h's normal_quantile).
double normal_density(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI); }

std::vector<float> dequantized(const QuantizedMatrix& q) {
  std::vector<float> out(static_cast<size_t>(q.rows() * q.cols()));
  q.dequantize_rows(0, q.rows(), out.data());
  return out;
}

// For C = A op(W) + beta C0 (A M x K, W stored as `w` with `cols` columns): sqrt(sum over C of
// (|A| |op(W)| + |beta C0|)^2 / sum of C^2), how much larger the summed magnitudes are than the
// result. gamma_{K+1} times it bounds the norm-wise relative error of any fp32 summation order.
double magnitude_ratio(const std::vector<float>& A, const std::vector<float>& w, int64_t cols, bool transpose, int64_t M,
                       int64_t N, int64_t K, float beta, const std::vector<float>& c0, const std::vector<float>& c) {
  double magnitude_sq = 0.0, norm = 0.0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double m = std::fabs(double{beta} * c0[static_cast<size_t>(i * N + j)]);
      for (int64_t k = 0; k < K; ++k)
        m += std::fabs(double{A[static_cast<size_t>(i * K + k)]} *
                       w[static_cast<size_t>(transpose ? j * cols + k : k * cols + j)]);
      magnitude_sq += m * m;
      norm += double{c[static_cast<size_t>(i * N + j)]} * c[static_cast<size_t>(i * N + j)];
    }
  return std::sqrt(magnitude_sq / norm);
}

double relative_difference(const std::vector<float>& got, const std::vector<float>& expected) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff += (got[i] - expected[i]) * static_cast<double>(got[i] - expected[i]);
    norm += expected[i] * static_cast<double>(expected[i]);
  }
  return std::sqrt(diff / norm);
}

std::vector<uint16_t> to_bf16(const std::vector<float>& x) {
  std::vector<uint16_t> out(x.size());
  float_to_half(x.data(), DType::BF16, out.data(), static_cast<int64_t>(x.size()));
  return out;
}

std::vector<float> from_bf16(const std::vector<uint16_t>& x) {
  std::vector<float> out(x.size());
  half_to_float(x.data(), DType::BF16, out.data(), static_cast<int64_t>(x.size()));
  return out;
}
}  // namespace

// bitsandbytes' NF4 table (functional.py, the paper's Appendix E), as published.
TEST(QuantizedMatrix, Nf4LevelsAreThePublishedOnes) {
  const float published[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                               -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                               0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
                               0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
  // The published table is bitsandbytes' create_normal_map in float32: probabilities from
  // torch.linspace(0.9677083, 0.5, 9 or 8) in float32, each within 4 u of exact (the offset's rounding,
  // carried into the step; the step's, the product's and the sum's), their quantiles x rounded to
  // float and divided, in float, by the largest (x_top, of the offset: u of it). frugal takes the
  // quantiles of exact probabilities in double and rounds once. A probability off by dp moves its
  // quantile by dp / phi(x): per level 4 u / (phi(x) x_top) + |l| (4 u + u p_top / (phi(x_top) x_top)),
  // to first order (the 4 u of |l|: the three float roundings and frugal's one).
  const double p_top = 0.9677083, x_top = normal_quantile(p_top);
  for (int i = 0; i < 16; ++i) {
    const double l = published[i], x = l * x_top;
    const double bound = 4 * kFp32Unit / (normal_density(x) * x_top) +
                         std::fabs(l) * kFp32Unit * (4 + p_top / (normal_density(x_top) * x_top));
    EXPECT_NEAR(nf4_levels()[static_cast<size_t>(i)], published[i], bound) << i;
  }
}

TEST(QuantizedMatrix, EachBlocksErrorIsWithinItsFormatsBound) {
  const int64_t rows = 96, cols = 200;  // 300 blocks: two absmax blocks of the double quantisation
  const int64_t blocks = rows * cols / kQuantBlock;
  const std::vector<float> w = weights(rows * cols, 3);
  std::vector<float> absmax(static_cast<size_t>(blocks), 0.0f);
  for (int64_t i = 0; i < rows * cols; ++i)
    absmax[static_cast<size_t>(i / kQuantBlock)] = std::max(absmax[static_cast<size_t>(i / kQuantBlock)], std::fabs(w[static_cast<size_t>(i)]));
  // The largest distance from a value in [-1, 1] to its nearest level: NF4's, and the signed 8-bit
  // dynamic code's (the absmax values' second quantisation). (In double: exact.)
  const auto half_gap = [](const std::vector<float>& levels) {
    double g = 0.0;
    for (size_t i = 0; i + 1 < levels.size(); ++i) g = std::max(g, 0.5 * (double{levels[i + 1]} - levels[i]));
    return g;
  };
  const double nf4_gap = half_gap({nf4_levels().begin(), nf4_levels().end()});
  const double code8_gap = half_gap(signed_code8().magnitudes());
  const double u = kFp32Unit;
  double mean = 0.0;
  for (float a : absmax) mean += a;
  mean /= static_cast<double>(blocks);
  for (QuantFormat format : {QuantFormat::Nf4, QuantFormat::Int8}) {
    const QuantizedMatrix q = QuantizedMatrix::quantize(w.data(), rows, cols, format);
    const std::vector<float> back = dequantized(q);
    for (int64_t b = 0; b < blocks; ++b) {
      const float a = absmax[static_cast<size_t>(b)];
      float worst = 0.0f;
      for (int64_t i = b * kQuantBlock; i < (b + 1) * kQuantBlock; ++i)
        worst = std::max(worst, std::fabs(w[static_cast<size_t>(i)] - back[static_cast<size_t>(i)]));
      const float scale_error = std::fabs(q.block_scale(b) - a);
      if (format == QuantFormat::Int8) {  // half a step of absmax / 127; the scale is exact
        EXPECT_EQ(scale_error, 0.0f);
        // The code is lround(x (1 / a) 127): three float roundings put the argument within 3 u |x| of
        // 127 x / a in steps of a / 127, so the rounding goes at most 3 u |x| <= 3 u a past half a
        // step; dequantising, q fl(a / 127) rounds twice more, 2 u of |q| a / 127 <= a. (The test's
        // own float subtraction: u of the difference.)
        ASSERT_LE(worst, (a / 254.0 + 5 * u * a) * (1 + u)) << "int8 block " << b;
        continue;
      }
      // nf4: the scale within half a gap of the 8-bit code times its group's largest |absmax - mean|;
      // each value within half an NF4 gap of the true scale, plus the scale's error (|level| <= 1).
      const int64_t g0 = b / kAbsmaxBlock * kAbsmaxBlock, g1 = std::min(blocks, g0 + kAbsmaxBlock);
      double group = 0.0;
      for (int64_t k = g0; k < g1; ++k) group = std::max(group, std::fabs(absmax[static_cast<size_t>(k)] - mean));
      // Plus the float arithmetic, to first order: the mean rounded to float and a - mean (u of mean
      // and of group), which moves the group's scale S by as much; the code's quantiser (x (1 / S):
      // 2 u, its float midpoints: u, of S); the scale's product and sum (u of S, u of a); the test's
      // own float subtraction (u of the difference).
      const double scale_bound = (code8_gap * group + u * (2 * mean + 6 * group + a)) * (1 + u);
      ASSERT_LE(scale_error, scale_bound) << "nf4 block " << b << "'s scale";
      // And each value: x (1 / a) rounds twice and NF4's float midpoints once (3 u of a), the level
      // times the scale once (u of a and of its error); the test's subtraction.
      const double value_bound = (a * nf4_gap + scale_error * (1 + u) + 4 * u * a) * (1 + u);
      ASSERT_LE(worst, value_bound) << "nf4 block " << b;
    }
  }
}

TEST(QuantizedMatrix, BytesAreTheFormats) {
  const int64_t rows = 64, cols = 1024, n = rows * cols;
  MemoryLedger ledger(/*measure_only=*/true);
  LedgerScope scope(ledger);
  const QuantizedMatrix nf4 = QuantizedMatrix::quantize(nullptr, rows, cols, QuantFormat::Nf4);
  EXPECT_EQ(nf4.nbytes(), static_cast<size_t>(n / 2 + n / 64 + 4 * 4));  // 1024 absmax values: 4 scales
  const QuantizedMatrix int8 = QuantizedMatrix::quantize(nullptr, rows, cols, QuantFormat::Int8);
  EXPECT_EQ(int8.nbytes(), static_cast<size_t>(n + 4 * n / 64));
  EXPECT_EQ(ledger.live()[MemCategory::Params], nf4.nbytes() + int8.nbytes());
}

TEST(QuantizedMatrix, ProductEqualsTheProductWithItsDequantizedCopy) {
  // Stored shapes: 320 x 36 (blocks straddle rows; two row tiles), 300 x 576 (column panels of 448
  // and 128), 320 x 300 (panels of 256 and 44: blocks cut by a panel's edge).
  const int64_t M = 37;
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{320, 36}, {300, 576}, {320, 300}}) {
    const std::vector<float> w = weights(rows * cols, 5);
    for (QuantFormat format : {QuantFormat::Nf4, QuantFormat::Int8}) {
      const QuantizedMatrix q = QuantizedMatrix::quantize(w.data(), rows, cols, format);
      const std::vector<float> full = dequantized(q);
      std::vector<float> tile(static_cast<size_t>(quantized_gemm_tile_floats(q)));
      for (bool transpose : {false, true}) {
        const int64_t K = transpose ? cols : rows, N = transpose ? rows : cols;
        const std::vector<float> A = weights(M * K, 7);
        const std::vector<float> c0 = weights(M * N, 9);  // beta = 0.5 keeps half of C
        std::vector<float> expected = c0, got = c0;
        // Two fp32 products of the same values, blocked differently (tiles or panels against one
        // GEMM): each within gamma_{K+1} of the magnitudes |A| |W| + 0.5 |C| (K products and C's
        // term; the scale 0.5 is exact), in any order, on any kernel.
        gemm(false, transpose, M, N, K, 1.0f, A.data(), K, full.data(), cols, 0.5f, expected.data(), N);
        quantized_gemm(A.data(), M, q, transpose, 0.5f, got.data(), tile.data());
        const double bound = 2 * gamma_n(static_cast<double>(K + 1)) *
                              magnitude_ratio(A, full, cols, transpose, M, N, K, 0.5f, c0, expected);
        EXPECT_LE(relative_difference(got, expected), bound) << quant_format_name(format) << " " << rows << "x" << cols
                                                             << (transpose ? " W^T" : " W");
      }
    }
  }
  EXPECT_EQ(quantized_panel_columns(QuantizedMatrix::quantize(weights(300 * 576, 1).data(), 300, 576, QuantFormat::Int8)), 448);
  EXPECT_EQ(quantized_panel_columns(QuantizedMatrix::quantize(weights(1040 * 1100, 1).data(), 1040, 1100, QuantFormat::Int8),
                                    kHalfTileRows),
            1024);
}

// Issue 36: on the half units the tiles are dequantised to bf16 (never a full fp32 tile) and go
// straight into the bf16 GEMM; the result is the product with W's dequantised values rounded to bf16.
TEST(QuantizedMatrix, HalfProductEqualsTheProductWithItsBf16DequantizedCopy) {
  if (!has_half_gemm(DType::BF16)) GTEST_SKIP() << "no bf16 units in use here (kernels/gemm.h has_half_gemm)";
  // The shapes above in one tile each, and 1040 x 1100: row tiles of 1024 and 16, panels of 1024 and
  // 76 columns (blocks straddle rows and panel edges).
  const int64_t M = 37;
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{320, 36}, {300, 576}, {320, 300}, {1040, 1100}}) {
    const std::vector<float> w = weights(rows * cols, 5);
    for (QuantFormat format : {QuantFormat::Nf4, QuantFormat::Int8}) {
      SCOPED_TRACE(quant_format_name(format) + " " + std::to_string(rows) + "x" + std::to_string(cols));
      const QuantizedMatrix q = QuantizedMatrix::quantize(w.data(), rows, cols, format);
      const std::vector<uint16_t> full_half = to_bf16(dequantized(q));
      // A panel (blocks cut at both edges) is the fp32 dequantisation rounded once, bit for bit.
      const int64_t r0 = 3, c0 = 5, width = cols - c0;
      std::vector<uint16_t> panel(static_cast<size_t>((rows - r0) * width));
      q.dequantize_panel_half(r0, rows, c0, cols, DType::BF16, panel.data());
      for (int64_t r = r0; r < rows; ++r)
        for (int64_t c = c0; c < cols; ++c)
          ASSERT_EQ(panel[static_cast<size_t>((r - r0) * width + c - c0)], full_half[static_cast<size_t>(r * cols + c)]);
      const std::vector<float> w_half = from_bf16(full_half);
      std::vector<uint16_t> tile(static_cast<size_t>(quantized_gemm_half_tile_values(q)));
      for (bool transpose : {false, true}) {
        SCOPED_TRACE(transpose ? "W^T" : "W");
        const int64_t K = transpose ? cols : rows, N = transpose ? rows : cols;
        const std::vector<uint16_t> A_half = to_bf16(weights(M * K, 7));
        const std::vector<float> A = from_bf16(A_half);
        // fp32 sums of exact products (bf16 x bf16 fits fp32) in two orders: within 2 gamma_{K+1}.
        const std::vector<float> c_start = weights(M * N, 9);
        std::vector<float> expected = c_start, got = c_start;
        gemm(false, transpose, M, N, K, 1.0f, A.data(), K, w_half.data(), cols, 0.5f, expected.data(), N);
        quantized_gemm_half(DType::BF16, A_half.data(), M, q, transpose, 0.5f, got.data(), tile.data());
        const double sums = 2 * gamma_n(static_cast<double>(K + 1)) *
                            magnitude_ratio(A, w_half, cols, transpose, M, N, K, 0.5f, c_start, expected);
        EXPECT_LE(relative_difference(got, expected), sums);
        // In bf16 with a bias: the same sums (C's term now the bias) plus one rounding to nearest.
        const std::vector<float> bias = weights(N, 11);
        std::vector<float> expected_out(static_cast<size_t>(M * N)), broadcast(static_cast<size_t>(M * N));
        for (int64_t i = 0; i < M * N; ++i) broadcast[static_cast<size_t>(i)] = bias[static_cast<size_t>(i % N)];
        expected_out = broadcast;
        gemm(false, transpose, M, N, K, 1.0f, A.data(), K, w_half.data(), cols, 1.0f, expected_out.data(), N);
        std::vector<uint16_t> out(static_cast<size_t>(M * N));
        quantized_gemm_half_out(DType::BF16, A_half.data(), M, q, transpose, bias.data(), out.data(), tile.data());
        const double rounded = 0.5 * kBf16Unit + 2 * gamma_n(static_cast<double>(K + 1)) *
                                                     magnitude_ratio(A, w_half, cols, transpose, M, N, K, 1.0f,
                                                                     broadcast, expected_out);
        EXPECT_LE(relative_difference(from_bf16(out), expected_out), rounded);
      }
    }
  }
}

// Read a chunk of rows at a time (a frozen LM head that has no fp32 copy): the same matrix as
// quantising it whole, every value and every block's scale bit for bit, for chunks that do and do not
// divide the rows (rows of 40 values: a chunk is rounded up to 64 rows so blocks never straddle
// chunks) and one chunk larger than the matrix. Measure mode reads nothing.
TEST(QuantizedMatrix, QuantisingByRowsEqualsQuantisingWhole) {
  const int64_t rows = 160, cols = 40;
  const std::vector<float> w = weights(rows * cols, 21);
  for (QuantFormat format : {QuantFormat::Nf4, QuantFormat::Int8}) {
    const QuantizedMatrix whole = QuantizedMatrix::quantize(w.data(), rows, cols, format);
    for (int64_t chunk : {int64_t{10}, int64_t{64}, int64_t{1000}}) {
      SCOPED_TRACE(quant_format_name(format) + ", chunk " + std::to_string(chunk));
      int64_t reads = 0;
      const QuantizedMatrix by_rows = QuantizedMatrix::quantize_by_rows(rows, cols, format, chunk,
                                                                        [&](int64_t r0, int64_t r1, float* out) {
        ++reads;
        std::copy(w.begin() + r0 * cols, w.begin() + r1 * cols, out);
      });
      EXPECT_EQ(reads, chunk >= rows ? 1 : (rows + 63) / 64);
      EXPECT_EQ(by_rows.nbytes(), whole.nbytes());
      EXPECT_EQ(dequantized(by_rows), dequantized(whole));
      for (int64_t b = 0; b < rows * cols / kQuantBlock; ++b) {
        ASSERT_EQ(by_rows.block_scale(b), whole.block_scale(b)) << b;
      }
    }
  }
  // Measure mode allocates what a real run does (the codes and the chunk buffer), so the planned peak
  // is the measured one, and reads nothing.
  MemoryLedger measuring(/*measure_only=*/true), real;
  {
    LedgerScope scope(measuring);
    const auto must_not_read = [](int64_t, int64_t, float*) { FAIL() << "read"; };
    const QuantizedMatrix q = QuantizedMatrix::quantize_by_rows(rows, cols, QuantFormat::Nf4, 64, must_not_read);
    EXPECT_EQ(q.nbytes(), QuantizedMatrix::quantize(nullptr, rows, cols, QuantFormat::Nf4).nbytes());
  }
  {
    LedgerScope scope(real);
    const QuantizedMatrix q = QuantizedMatrix::quantize_by_rows(rows, cols, QuantFormat::Nf4, 64,
                                                                [&](int64_t r0, int64_t r1, float* out) {
      std::copy(w.begin() + r0 * cols, w.begin() + r1 * cols, out);
    });
  }
  EXPECT_EQ(measuring.peak().total, real.peak().total);
  EXPECT_GE(measuring.peak().total, static_cast<size_t>(64 * cols * 4));  // the chunk buffer, at least
}

TEST(QuantizedMatrix, ABlockSizeThatDoesNotDivideIsRefused) {
  const std::vector<float> w(30 * 3, 1.0f);
  try {
    QuantizedMatrix::quantize(w.data(), 30, 3, QuantFormat::Nf4);
    FAIL() << "90 values were quantised in blocks of 64";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a multiple"), std::string::npos) << e.what();
  }
}
