// Products against a quantised frozen weight (kernels/quantized_matrix.h, issue 19) beside the paths
// frugal has for a frozen weight today: fp32 W, and a bf16 W widened whole into fp32 before OpenBLAS
// (--base-precision bf16 without bf16 units). GPT-2 small's and XL's linear layers at 1024 rows (one
// sequence of context 1024): the forward (x W) and the input gradient (dy W^T) of the HF Conv1D
// layout. Milliseconds, best of a few repeats; then dequantisation alone in ns per value.
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

void dequantize_speed() {
  const int64_t rows = 4096, cols = 4096;
  std::vector<float> w(static_cast<size_t>(rows * cols)), out(w.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int64_t>(i % 17) - 8) / 40.0f;
  for (QuantFormat f : {QuantFormat::Nf4, QuantFormat::Int8}) {
    const QuantizedMatrix q = QuantizedMatrix::quantize(w.data(), rows, cols, f);
    const double ms = best_ms([&] { q.dequantize_rows(0, rows, out.data()); });
    std::printf("dequantise %s: %.2f ns per value\n", quant_format_name(f).c_str(), ms * 1e6 / static_cast<double>(w.size()));
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
  dequantize_speed();
  return 0;
}
