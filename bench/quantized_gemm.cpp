// Products against a quantised frozen weight (kernels/quantized_matrix.h, issue 19) beside the paths
// frugal has for a frozen weight today: fp32 W, and a bf16 W widened whole into fp32 before OpenBLAS
// (--base-precision bf16 without bf16 units). GPT-2 small's and XL's linear layers at 1024 rows (one
// sequence of context 1024): the forward (x W) and the input gradient (dy W^T) of the HF Conv1D
// layout. Milliseconds, best of a few repeats; then dequantisation alone in ns per value. Where the
// CPU's bf16 units are in use (kernels/gemm.h has_half_gemm), the same products with bf16 inputs on
// them (issue 36), Llama-3.1-8B's layers (torch.nn.Linear layout) included: a bf16 W against nf4 and
// int8 tiles dequantised to bf16, in ms and in GFLOP/s.
//
//   OPENBLAS_CORETYPE=... build/quantized_gemm [threads]
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "kernels/convert.h"
#include "kernels/gemm.h"
#include "kernels/quantized_matrix.h"

using namespace frugal;

namespace {
struct LayerShape {
  const char* what;
  int64_t in, out;
};
constexpr LayerShape kShapes[] = {{"GPT-2 small c_attn 768x2304", 768, 2304},
                                  {"GPT-2 small c_fc   768x3072", 768, 3072},
                                  {"GPT-2 small c_proj 3072x768", 3072, 768},
                                  {"GPT-2 XL    c_fc   1600x6400", 1600, 6400},
                                  {"GPT-2 XL    c_proj 6400x1600", 6400, 1600}};
constexpr int64_t kRows = 1024;

double best_ms(const std::function<void()>& run) {
  run();
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

void measure(const LayerShape& s, bool dx) {
  const int64_t K = dx ? s.out : s.in, N = dx ? s.in : s.out;  // forward: x (rows x in) W (in x out)
  std::vector<float> w(static_cast<size_t>(s.in * s.out)), a(static_cast<size_t>(kRows * K)), c(static_cast<size_t>(kRows * N));
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int64_t>(i % 17) - 8) / 40.0f;
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 13) / 13.0f;
  std::vector<uint16_t> wh(w.size());
  float_to_half(w.data(), DType::BF16, wh.data(), static_cast<int64_t>(w.size()));
  std::vector<float> wide(w.size());
  const auto fp32 = [&] { gemm(false, dx, kRows, N, K, 1.0f, a.data(), K, w.data(), s.out, 0.0f, c.data(), N); };
  const auto bf16 = [&] {
    half_to_float(wh.data(), DType::BF16, wide.data(), static_cast<int64_t>(wh.size()));
    gemm(false, dx, kRows, N, K, 1.0f, a.data(), K, wide.data(), s.out, 0.0f, c.data(), N);
  };
  const QuantizedMatrix nf4 = QuantizedMatrix::quantize(w.data(), s.in, s.out, QuantFormat::Nf4);
  const QuantizedMatrix int8 = QuantizedMatrix::quantize(w.data(), s.in, s.out, QuantFormat::Int8);
  std::vector<float> tile(static_cast<size_t>(quantized_gemm_tile_floats(nf4)));
  const double t32 = best_ms(fp32), t16 = best_ms(bf16);
  const double t4 = best_ms([&] { quantized_gemm(a.data(), kRows, nf4, dx, 0.0f, c.data(), tile.data()); });
  const double t8 = best_ms([&] { quantized_gemm(a.data(), kRows, int8, dx, 0.0f, c.data(), tile.data()); });
  std::printf("| %s %s | %.1f | %.1f | %.1f (%.2fx) | %.1f (%.2fx) |\n", s.what, dx ? "dy W^T" : "x W", t32, t16, t4,
              t4 / t16, t8, t8 / t16);
}

constexpr LayerShape kHalfShapes[] = {{"GPT-2 small c_fc   768x3072", 768, 3072},
                                      {"GPT-2 XL    c_fc   1600x6400", 1600, 6400},
                                      {"Llama-8B q_proj 4096x4096", 4096, 4096},
                                      {"Llama-8B k_proj 4096x1024", 4096, 1024},
                                      {"Llama-8B gate_proj 4096x14336", 4096, 14336},
                                      {"Llama-8B down_proj 14336x4096", 14336, 4096}};

// bf16 inputs on the bf16 units, W stored (out, in) as torch.nn.Linear's: forward x W^T, dx = dy W.
void measure_half(const LayerShape& s, bool dx) {
  const int64_t K = dx ? s.out : s.in, N = dx ? s.in : s.out;
  std::vector<float> w(static_cast<size_t>(s.in * s.out)), a(static_cast<size_t>(kRows * K));
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int64_t>(i % 17) - 8) / 40.0f;
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 13) / 13.0f;
  std::vector<uint16_t> wh(w.size()), ah(a.size()), c(static_cast<size_t>(kRows * N));
  float_to_half(w.data(), DType::BF16, wh.data(), static_cast<int64_t>(w.size()));
  float_to_half(a.data(), DType::BF16, ah.data(), static_cast<int64_t>(a.size()));
  const QuantizedMatrix nf4 = QuantizedMatrix::quantize(w.data(), s.out, s.in, QuantFormat::Nf4);
  const QuantizedMatrix int8 = QuantizedMatrix::quantize(w.data(), s.out, s.in, QuantFormat::Int8);
  std::vector<uint16_t> tile(static_cast<size_t>(quantized_gemm_half_tile_values(nf4)));
  const double t16 = best_ms([&] {
    gemm_half_out(DType::BF16, false, !dx, kRows, N, K, 1.0f, ah.data(), K, wh.data(), s.in, nullptr, c.data(), N);
  });
  const auto on = [&](const QuantizedMatrix& q) {
    return best_ms([&] { quantized_gemm_half_out(DType::BF16, ah.data(), kRows, q, !dx, nullptr, c.data(), tile.data()); });
  };
  const double t4 = on(nf4), t8 = on(int8);
  const double gflop = 2.0 * static_cast<double>(kRows * N * K) * 1e-9;
  std::printf("| %s %s | %.1f (%.0f) | %.1f (%.0f, %.2fx) | %.1f (%.0f, %.2fx) |\n", s.what, dx ? "dy W" : "x W^T", t16,
              gflop / t16 * 1e3, t4, gflop / t4 * 1e3, t4 / t16, t8, gflop / t8 * 1e3, t8 / t16);
}

void dequantize_speed() {
  const int64_t rows = 4096, cols = 4096;
  std::vector<float> w(static_cast<size_t>(rows * cols)), out(w.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int64_t>(i % 17) - 8) / 40.0f;
  for (QuantFormat f : {QuantFormat::Nf4, QuantFormat::Int8}) {
    const QuantizedMatrix q = QuantizedMatrix::quantize(w.data(), rows, cols, f);
    const double ms = best_ms([&] { q.dequantize_rows(0, rows, out.data()); });
    std::printf("dequantise %s: %.2f ns per value\n", quant_format_name(f).c_str(), ms * 1e6 / static_cast<double>(w.size()));
    if (!has_half_gemm(DType::BF16)) continue;
    std::vector<uint16_t> half(w.size());
    const double half_ms = best_ms([&] { q.dequantize_panel_half(0, rows, 0, cols, DType::BF16, half.data()); });
    std::printf("dequantise %s to bf16: %.2f ns per value\n", quant_format_name(f).c_str(),
                half_ms * 1e6 / static_cast<double>(w.size()));
  }
}
}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) omp_set_num_threads(std::atoi(argv[1]));
  std::printf("%d threads; GEMM %s; %lld rows\n", omp_get_max_threads(), gemm_kernel(DType::F32).c_str(),
              static_cast<long long>(kRows));
  std::printf("| layer, product | fp32 W (ms) | bf16 W widened (ms) | nf4 (ms, vs bf16) | int8 (ms, vs bf16) |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  for (const LayerShape& s : kShapes)
    for (bool dx : {false, true}) measure(s, dx);
  if (has_half_gemm(DType::BF16)) {
    std::printf("\nbf16 inputs on %s (ms, GFLOP/s):\n", half_gemm_kernel(DType::BF16).c_str());
    std::printf("| layer, product | bf16 W | nf4 tiles to bf16 (vs bf16 W) | int8 tiles to bf16 (vs bf16 W) |\n");
    std::printf("|---|---:|---:|---:|\n");
    for (const LayerShape& s : kHalfShapes)
      for (bool dx : {false, true}) measure_half(s, dx);
  }
  dequantize_speed();
  return 0;
}
