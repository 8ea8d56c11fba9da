// GEMMs with half-precision inputs on the CPU's own units, through oneDNN's matmul primitive (the
// library PyTorch uses for bf16 on CPUs): bf16 x bf16 with fp32 accumulation and an fp32 result.
// oneDNN 2.6 has no BLAS-like bf16 call, so each shape's primitive is created once and cached.
#include <dnnl.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

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

// `batch` (rows x cols) matrices at row stride `ld`, `stride` elements apart, or their transposes in
// memory (op(X) = X^T). One matrix is described as 2-D: a batch dimension of one with no stride
// sends oneDNN 2.6 to its reference kernel.
memory::desc matrices(int64_t batch, int64_t rows, int64_t cols, int64_t ld, int64_t stride, bool transposed,
                      memory::data_type type) {
  if (batch == 1) return memory::desc({rows, cols}, type, transposed ? memory::dims{1, ld} : memory::dims{ld, 1});
  return memory::desc({batch, rows, cols}, type, transposed ? memory::dims{stride, 1, ld} : memory::dims{stride, ld, 1});
}

struct Product {  // one GEMM shape: what a cached primitive is made for
  int type;
  int64_t batch;
  bool ta, tb;
  int64_t M, N, K, lda, ldb, ldc, stride_a, stride_b, stride_c;
  float alpha, beta;
  bool half_out = false, bias = false;  // C in `type` (else fp32); a bias row added to C
  auto key() const {
    return std::tie(type, batch, ta, tb, M, N, K, lda, ldb, ldc, stride_a, stride_b, stride_c, alpha, beta, half_out, bias);
  }
  bool operator<(const Product& o) const { return key() < o.key(); }
};

struct Cached {
  dnnl::matmul primitive;
  memory::desc a, b, c;
};

const Cached& primitive_for(const Product& p) {
  static std::mutex mutex;
  static std::map<Product, Cached> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(p);
  if (it != cache.end()) return it->second;
  const memory::data_type dt = onednn_type(static_cast<DType>(p.type));
  Cached c{{},
           matrices(p.batch, p.M, p.K, p.lda, p.stride_a, p.ta, dt),
           matrices(p.batch, p.K, p.N, p.ldb, p.stride_b, p.tb, dt),
           matrices(p.batch, p.M, p.N, p.ldc, p.stride_c, false, p.half_out ? dt : memory::data_type::f32)};
  dnnl::primitive_attr attr;
  if (p.alpha != 1.0f) attr.set_output_scales(0, {p.alpha});
  if (p.beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(p.beta);
    attr.set_post_ops(ops);
  }
  const memory::desc bias = p.bias ? memory::desc({1, p.N}, memory::data_type::f32, memory::dims{p.N, 1}) : memory::desc();
  const dnnl::matmul::primitive_desc pd(
      p.bias ? dnnl::matmul::desc(c.a, c.b, bias, c.c) : dnnl::matmul::desc(c.a, c.b, c.c), attr, cpu_engine());
  // oneDNN's reference kernel is correct but hundreds of times slower: say so once per shape.
  if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0)
    std::fprintf(stderr, "frugal: warning: oneDNN has only its slow reference kernel for a %lld x (%lld x %lld) x (%lld x %lld) %s product\n",
                 static_cast<long long>(p.batch), static_cast<long long>(p.M), static_cast<long long>(p.K),
                 static_cast<long long>(p.K), static_cast<long long>(p.N), dtype_name(static_cast<DType>(p.type)).c_str());
  c.primitive = dnnl::matmul(pd);
  return cache.emplace(p, std::move(c)).first->second;
}

void run(const Product& p, const void* A, const void* B, void* C, const float* bias = nullptr) {
  const DType type = static_cast<DType>(p.type);
  if (!has_half_gemm(type))
    throw Error("gemm_half: no " + dtype_name(type) + " GEMM kernel on this CPU");
  const Cached& c = primitive_for(p);
  dnnl::stream stream(cpu_engine());
  memory a(c.a, cpu_engine(), const_cast<void*>(A)), b(c.b, cpu_engine(), const_cast<void*>(B)),
      out(c.c, cpu_engine(), C);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, out}};
  if (bias)
    args.emplace(DNNL_ARG_BIAS, memory(memory::desc({1, p.N}, memory::data_type::f32, memory::dims{p.N, 1}),
                                       cpu_engine(), const_cast<float*>(bias)));
  c.primitive.execute(stream, args);
  stream.wait();
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

bool bf16_units_pay_off(const CpuFeatures& cpu) {
  // AMX multiplies bf16 tiles many times faster than AVX-512 FMAs. Without AMX, Intel's vdpbf16ps
  // issues on one port (64 flops a cycle), which two FMA ports match in fp32: measured on an
  // Emerald Rapids Xeon whose AMX is hidden by its hypervisor, oneDNN's bf16 GEMM ran 169 GFLOP/s
  // against OpenBLAS's 309 in fp32, and the reference step 1.53x fp32 against 1.07x widened. AMD's
  // Zen 5 runs it on both of its 512-bit pipes (reference step 0.66x fp32 through oneDNN).
  if (cpu.amx_bf16) return true;
  return cpu.avx512_bf16 && cpu.vendor == "AuthenticAMD";
}

std::string half_gemm_override() {
  const char* setting = std::getenv("FRUGAL_HALF_GEMM");
  return setting ? setting : "";
}

bool has_half_gemm(DType type) {
  static const bool bf16 = [] {
    // FRUGAL_HALF_GEMM=off: bf16 as on a CPU without bf16 units (widened around OpenBLAS); =on: on
    // the bf16 units wherever the CPU has them, even where they do not pay off. So the tests of both
    // paths run on any CPU with the units, and the two can be timed on one machine.
    const std::string mode = half_gemm_override();
    if (mode == "off") return false;
    const CpuFeatures& cpu = this_cpu();
    const std::string impl = onednn_implementation(DType::BF16);
    const bool usable = (cpu.avx512_bf16 || cpu.amx_bf16) && !impl.empty() && impl.rfind("ref", 0) != 0;
    return usable && (mode == "on" || bf16_units_pay_off(cpu));
  }();
  // oneDNN 2.6 has no fp16 matmul kernels for CPUs (its AVX512-FP16 support came later).
  return type == DType::BF16 && bf16;
}

std::string half_gemm_kernel(DType type) { return has_half_gemm(type) ? "oneDNN " + onednn_implementation(type) : ""; }

void gemm_half(DType type, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
               int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  run({static_cast<int>(type), 1, trans_a, trans_b, M, N, K, lda, ldb, ldc, 0, 0, 0, alpha, beta}, A, B, C);
}

void gemm_half_out(DType type, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                   int64_t lda, const uint16_t* B, int64_t ldb, const float* bias, uint16_t* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  // (oneDNN scales the sum and the bias together: alpha must stay 1 where a bias is added)
  check(bias == nullptr || alpha == 1.0f, "gemm_half_out: a bias needs alpha 1");
  Product p{static_cast<int>(type), 1, trans_a, trans_b, M, N, K, lda, ldb, ldc, 0, 0, 0, alpha, 0.0f};
  p.half_out = true;
  p.bias = bias != nullptr;
  run(p, A, B, C, bias);
}

void gemm_half_batched(DType type, int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const uint16_t* A, int64_t lda, int64_t stride_a, const uint16_t* B, int64_t ldb, int64_t stride_b,
                       float beta, float* C, int64_t ldc, int64_t stride_c) {
  if (batch == 0 || M == 0 || N == 0) return;
  run({static_cast<int>(type), batch, trans_a, trans_b, M, N, K, lda, ldb, ldc, stride_a, stride_b, stride_c, alpha, beta},
      A, B, C);
}

void gemm_half_batched_out(DType type, int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                           float alpha, const uint16_t* A, int64_t lda, int64_t stride_a, const uint16_t* B, int64_t ldb,
                           int64_t stride_b, uint16_t* C, int64_t ldc, int64_t stride_c) {
  if (batch == 0 || M == 0 || N == 0) return;
  Product p{static_cast<int>(type), batch, trans_a, trans_b, M, N, K, lda, ldb, ldc, stride_a, stride_b, stride_c, alpha, 0.0f};
  p.half_out = true;
  run(p, A, B, C);
}

}  // namespace frugal
