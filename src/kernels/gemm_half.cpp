// GEMMs with half-precision inputs on the CPU's own units, through oneDNN's matmul primitive (the
// library PyTorch uses for bf16 on CPUs): bf16 x bf16 with fp32 accumulation and an fp32 result.
// oneDNN 2.6 has no BLAS-like bf16 call, so each shape's primitive is created once and cached.
#include <dnnl.hpp>

#include <map>
#include <mutex>
#include <tuple>

#include "core/cpu.h"
#include "core/error.h"
#include "kernels/gemm.h"

namespace frugal {

namespace {

using dnnl::memory;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::data_type onednn_type(DType t) { return t == DType::BF16 ? memory::data_type::bf16 : memory::data_type::f16; }

// An (rows x cols) matrix at row stride `ld`, or its transpose in memory (op(X) = X^T).
memory::desc matrix(int64_t rows, int64_t cols, int64_t ld, bool transposed, memory::data_type type) {
  return memory::desc({rows, cols}, type, transposed ? memory::dims{1, ld} : memory::dims{ld, 1});
}

using ShapeKey = std::tuple<int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float>;

struct Cached {
  dnnl::matmul primitive;
  memory::desc a, b, c;
};

const Cached& primitive_for(const ShapeKey& key) {
  static std::mutex mutex;
  static std::map<ShapeKey, Cached> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const auto& [type, ta, tb, M, N, K, lda, ldb, ldc, alpha, beta] = key;
  const memory::data_type dt = onednn_type(static_cast<DType>(type));
  Cached c{{}, matrix(M, K, lda, ta, dt), matrix(K, N, ldb, tb, dt), matrix(M, N, ldc, false, memory::data_type::f32)};
  dnnl::primitive_attr attr;
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(c.a, c.b, c.c), attr, cpu_engine());
  c.primitive = dnnl::matmul(pd);
  return cache.emplace(key, std::move(c)).first->second;
}

// The implementation oneDNN picks for a bf16 matmul on this CPU ("brg:avx512_core_bf16", ...).
std::string onednn_implementation(DType type) {
  try {
    const memory::desc m({64, 64}, onednn_type(type), memory::dims{64, 1});
    const memory::desc out({64, 64}, memory::data_type::f32, memory::dims{64, 1});
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(m, m, out), cpu_engine()).impl_info_str();
  } catch (const dnnl::error&) {
    return "";
  }
}

}  // namespace

bool has_half_gemm(DType type) {
  static const bool bf16 = [] {
    const CpuFeatures& cpu = this_cpu();
    const std::string impl = onednn_implementation(DType::BF16);
    return (cpu.avx512_bf16 || cpu.amx_bf16) && !impl.empty() && impl.rfind("ref", 0) != 0;
  }();
  // oneDNN 2.6 has no fp16 matmul kernels for CPUs (its AVX512-FP16 support came later).
  return type == DType::BF16 && bf16;
}

std::string half_gemm_kernel(DType type) { return has_half_gemm(type) ? "oneDNN " + onednn_implementation(type) : ""; }

void gemm_half(DType type, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
               int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  check(has_half_gemm(type), "gemm_half: no " + dtype_name(type) + " GEMM kernel on this CPU");
  const Cached& p = primitive_for({static_cast<int>(type), trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, beta});
  dnnl::stream stream(cpu_engine());
  memory a(p.a, cpu_engine(), const_cast<uint16_t*>(A)), b(p.b, cpu_engine(), const_cast<uint16_t*>(B)),
      c(p.c, cpu_engine(), C);
  p.primitive.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
  stream.wait();
}

}  // namespace frugal
