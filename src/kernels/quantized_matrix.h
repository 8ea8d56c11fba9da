#pragma once
// Frozen weights in 4 or 8 bits (QLoRA's base, Dettmers et al. 2023; ggml's Q4/Q8 blocks). A matrix
// (rows x cols, row-major as stored) is cut into blocks of kQuantBlock consecutive values, each with
// its absmax:
//   nf4:  one of the 16 NormalFloat levels per value (two per byte: even index in the high nibble), the
//         value being level * absmax. The absmax values are quantised again (double quantisation):
//         minus their mean, in blocks of kAbsmaxBlock, with the signed 8-bit dynamic code of
//         kernels/quantize8.h and an fp32 scale per block. 0.5 + 1/64 + 4/16384 bytes per value.
//   int8: round(value / absmax * 127) per value, the absmax in fp32. 1 + 4/64 bytes per value.
// Products against such a matrix dequantise a part of W at a time into a caller's tile (rows, or a
// column panel) and multiply it: fp32 tiles with OpenBLAS, or bf16/fp16 tiles on the CPU's half
// units (kernels/gemm.h gemm_half) for half inputs. No full-size copy of W ever exists.
#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace frugal {

enum class QuantFormat { Nf4, Int8 };
std::string quant_format_name(QuantFormat format);  // "nf4", "int8"

constexpr int64_t kQuantBlock = 64;     // values per absmax
constexpr int64_t kAbsmaxBlock = 256;   // nf4: absmax values per fp32 scale of their second quantisation
constexpr int64_t kTileRows = 256;      // stored rows dequantised per product step (fp32 tiles)
// ... bf16/fp16 tiles: oneDNN's bf16 products against 256-column tiles ran at 0.75-0.85x of the same
// product against a whole bf16 W (Llama-8B and GPT-2 XL shapes, 1024 rows, AMD EPYC Zen 5); against
// 1024-column tiles at 0.9-1.0x (bench/quantized_gemm).
constexpr int64_t kHalfTileRows = 1024;

// The standard normal quantile, by bisection on erfc in double precision (the NF4 levels are its
// values; only for those 16, it is not fast).
double normal_quantile(double p);

// The 16 NF4 levels, ascending in [-1, 1], derived as in the paper: normal quantiles at 8 (positive)
// and 7 (negative) evenly spaced probabilities from 0.5 to 0.9677083, normalised by the largest,
// with an exact 0 (so zero-padded values stay zero).
const std::array<float, 16>& nf4_levels();

class QuantizedMatrix {
 public:
  QuantizedMatrix() = default;
  // w (rows x cols) fp32, row-major. rows * cols must be a multiple of kQuantBlock. Storage in
  // `category` (frozen weights: Params).
  static QuantizedMatrix quantize(const float* w, int64_t rows, int64_t cols, QuantFormat format,
                                  MemCategory category = MemCategory::Params);
  // The same codes for a matrix read a chunk of rows at a time: read(r0, r1, out) writes stored rows
  // [r0, r1) as fp32 into out ((r1 - r0) x cols) -- for a matrix whose fp32 copy would not fit beside
  // the model (a frozen LM head, V x D). Blocks never straddle chunks (chunk_rows rounds up to a
  // multiple of kQuantBlock), so the bytes equal quantize's. Measure mode (no storage): read is not called.
  using RowReader = std::function<void(int64_t r0, int64_t r1, float* out)>;
  static QuantizedMatrix quantize_by_rows(int64_t rows, int64_t cols, QuantFormat format, int64_t chunk_rows,
                                          const RowReader& read, MemCategory category = MemCategory::Params);

  QuantFormat format() const { return format_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  size_t nbytes() const;  // codes, absmax values and their scales
  // Stored rows [r0, r1) into out ((r1 - r0) x cols fp32); or only columns [c0, c1) of them
  // (out (r1 - r0) x (c1 - c0)).
  void dequantize_rows(int64_t r0, int64_t r1, float* out) const;
  void dequantize_panel(int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* out) const;
  // The same panel rounded to `half` (F16 or BF16): through fp32 a few blocks at a time in a small
  // buffer of each thread's, never a full fp32 tile.
  void dequantize_panel_half(int64_t r0, int64_t r1, int64_t c0, int64_t c1, DType half, uint16_t* out) const;
  // Block b's absmax as the products use it (after nf4's double quantisation).
  float block_scale(int64_t b) const;

 private:
  // The storage for rows x cols in `format`, codes and absmax not yet written.
  static QuantizedMatrix allocate(int64_t rows, int64_t cols, QuantFormat format, MemCategory category);
  // Stores every block's absmax (nf4: after subtracting their mean, in 8 bits per kAbsmaxBlock group).
  void store_absmax(std::vector<float> absmax);
  // Values [begin, end) of the stored order into out (one thread).
  void dequantize_range(int64_t begin, int64_t end, float* out) const;

  QuantFormat format_ = QuantFormat::Int8;
  int64_t rows_ = 0, cols_ = 0;
  Tensor codes_;         // U8: nf4 two values per byte, int8 one (two's complement)
  Tensor absmax_;        // int8: F32 per block; nf4: U8 codes of (absmax - absmax_mean_)
  Tensor absmax_scale_;  // nf4: F32 per kAbsmaxBlock absmax values
  float absmax_mean_ = 0.0f;
};

// C (M x N) = A (M x K) op(W) + beta C, row-major, lda = K, ldc = N. With transpose W is stored
// N x K and op(W) = W^T: kTileRows stored rows at a time give that many columns of C. Without it W is
// stored K x N: a panel of all K rows and quantized_panel_columns(W) columns at a time (about as many
// floats as the other tile, a multiple of the block, at least kTileRows: narrower panels make
// OpenBLAS's products inefficient) gives that many columns of C.
// `tile`: quantized_gemm_tile_floats(W) floats.
int64_t quantized_panel_columns(const QuantizedMatrix& w, int64_t tile_rows = kTileRows);
int64_t quantized_gemm_tile_floats(const QuantizedMatrix& w);
void quantized_gemm(const float* A, int64_t M, const QuantizedMatrix& W, bool transpose_w, float beta, float* C,
                    float* tile);
// The same products on the half units (has_half_gemm(half)): A (M x K) and the dequantised tiles
// (kHalfTileRows rows, or panels as wide) in `half`, fp32 sums. `tile`: quantized_gemm_half_tile_values(W)
// values of `half`.
int64_t quantized_gemm_half_tile_values(const QuantizedMatrix& w);
void quantized_gemm_half(DType half, const uint16_t* A, int64_t M, const QuantizedMatrix& W, bool transpose_w, float beta,
                         float* C, uint16_t* tile);
// ... with C (M x N) in `half`, rounded from the fp32 sums plus bias (N, fp32, or null): a layer's
// output straight in the storage type.
void quantized_gemm_half_out(DType half, const uint16_t* A, int64_t M, const QuantizedMatrix& W, bool transpose_w,
                             const float* bias, uint16_t* C, uint16_t* tile);

}  // namespace frugal
