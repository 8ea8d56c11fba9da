// GEMM backends on this CPU, at the reference workload's shapes (DESIGN.md: 16 x 128 tokens, width
// 256, MLP 1024) or GPT-2 small's: OpenBLAS SGEMM (frugal's fp32 path), oneDNN's fp32 matmul
// (measured against it; not used: docs/DESIGN-NOTES.md "CPU kernels"), oneDNN bf16 (the CPU's bf16
// units) and bf16 widened to fp32 around OpenBLAS (frugal's bf16 path where the units do not pay
// off). GFLOP/s, best of a few repeats.
//
//   build/gemm_backends [threads] [gpt2]   (gpt2: GPT-2 small's shapes instead)
#include <cblas.h>
#include <dnnl.hpp>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "core/half.h"
#include "kernels/convert.h"
#include "kernels/gemm.h"

using namespace frugal;

namespace {

struct ProductShape {
  const char* what;
  int64_t M, N, K;
  bool trans_a, trans_b;
};

// Products of one linear layer's forward (x W^T), input gradient (dy W) and weight gradient (dy^T x).
constexpr ProductShape kReferenceShapes[] = {
    {"qkv forward  2048x768x256", 2048, 768, 256, false, true},
    {"fc forward   2048x1024x256", 2048, 1024, 256, false, true},
    {"proj forward 2048x256x1024", 2048, 256, 1024, false, true},
    {"fc dx        2048x256x1024", 2048, 256, 1024, false, false},
    {"fc dW        1024x256x2048", 1024, 256, 2048, true, false},
};

// GPT-2 small at context 1024, micro-batch 1, and its fused LM head's 256-row chunks.
constexpr ProductShape kGpt2SmallShapes[] = {
    {"qkv forward  1024x2304x768", 1024, 2304, 768, false, true},
    {"fc forward   1024x3072x768", 1024, 3072, 768, false, true},
    {"proj forward 1024x768x3072", 1024, 768, 3072, false, true},
    {"fc dx        1024x768x3072", 1024, 768, 3072, false, false},
    {"fc dW        3072x768x1024", 3072, 768, 1024, true, false},
    {"head logits  256x50257x768", 256, 50257, 768, false, true},
    {"head dh      256x768x50257", 256, 768, 50257, false, false},
    {"head dW      50257x768x256", 50257, 768, 256, true, false},
};

double best_gflops(double flops, const std::function<void()>& run) {
  run();  // warm-up: primitive creation, page faults
  double best = 0;
  for (int r = 0; r < 7; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0 && flops / s > best) best = flops / s;
  }
  return best / 1e9;
}

// A oneDNN matmul of `type` inputs into fp32, row-major with the same transposes.
struct OnednnProduct {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::matmul primitive;
  dnnl::memory a, b, c;
  OnednnProduct(const ProductShape& s, dnnl::memory::data_type type, void* A, void* B, float* C) {
    using dnnl::memory;
    const memory::desc ad({s.M, s.K}, type, s.trans_a ? memory::dims{1, s.M} : memory::dims{s.K, 1});
    const memory::desc bd({s.K, s.N}, type, s.trans_b ? memory::dims{1, s.K} : memory::dims{s.N, 1});
    const memory::desc cd({s.M, s.N}, memory::data_type::f32, memory::dims{s.N, 1});
    primitive = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(ad, bd, cd), engine));
    a = memory(ad, engine, A);
    b = memory(bd, engine, B);
    c = memory(cd, engine, C);
  }
  void run() {
    dnnl::stream stream(engine);
    primitive.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    stream.wait();
  }
};

void measure(const ProductShape& s) {
  const int64_t na = s.M * s.K, nb = s.K * s.N;
  std::vector<float> a(na), b(nb), c(s.M * s.N);
  for (int64_t i = 0; i < na; ++i) a[i] = static_cast<float>(i % 13) / 13.0f;
  for (int64_t i = 0; i < nb; ++i) b[i] = static_cast<float>(i % 7) / 7.0f;
  std::vector<uint16_t> ah(na), bh(nb);
  float_to_half(a.data(), DType::BF16, ah.data(), na);
  float_to_half(b.data(), DType::BF16, bh.data(), nb);
  const int64_t lda = s.trans_a ? s.M : s.K, ldb = s.trans_b ? s.K : s.N;
  const double flops = 2.0 * static_cast<double>(s.M * s.N * s.K);
  const auto openblas = [&] {  // OpenBLAS itself, called directly
    cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans, s.trans_b ? CblasTrans : CblasNoTrans,
                static_cast<int>(s.M), static_cast<int>(s.N), static_cast<int>(s.K), 1.0f, a.data(),
                static_cast<int>(lda), b.data(), static_cast<int>(ldb), 0.0f, c.data(), static_cast<int>(s.N));
  };
  const auto widened = [&] {
    half_to_float(ah.data(), DType::BF16, a.data(), na);
    half_to_float(bh.data(), DType::BF16, b.data(), nb);
    openblas();
  };
  OnednnProduct f32(s, dnnl::memory::data_type::f32, a.data(), b.data(), c.data());
  OnednnProduct bf16(s, dnnl::memory::data_type::bf16, ah.data(), bh.data(), c.data());
  std::printf("| %s | %.0f | %.0f | %.0f | %.0f |\n", s.what, best_gflops(flops, openblas),
              best_gflops(flops, [&] { f32.run(); }), best_gflops(flops, [&] { bf16.run(); }),
              best_gflops(flops, widened));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) omp_set_num_threads(std::atoi(argv[1]));
  const bool gpt2 = argc > 2 && std::string(argv[2]) == "gpt2";
  std::printf("GFLOP/s, %d threads; OpenBLAS %s, bf16 %s\n", omp_get_max_threads(),
              gemm_kernel(DType::F32).c_str(), gemm_kernel(DType::BF16).c_str());
  std::printf("| shape (M x N x K) | OpenBLAS fp32 | oneDNN fp32 | oneDNN bf16 | bf16 widened + OpenBLAS |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  if (gpt2)
    for (const ProductShape& s : kGpt2SmallShapes) measure(s);
  else
    for (const ProductShape& s : kReferenceShapes) measure(s);
  return 0;
}
