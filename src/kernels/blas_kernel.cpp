#include "kernels/blas_kernel.h"

#include <cblas.h>
#include <strings.h>

#include <cmath>

#include "core/error.h"

extern "C" char* openblas_get_corename(void);

namespace frugal {

namespace {

struct CoreKind {
  const char* name;
  int isa;  // 0 SSE, 1 AVX, 2 AVX2, 3 AVX-512
};

// OpenBLAS 0.3.21's force_coretype() list (driver/others/dynamic.c), with each kernel's ISA.
constexpr CoreKind kCores[] = {
    {"Katmai", 0},      {"Coppermine", 0}, {"Northwood", 0},   {"Prescott", 0},   {"Banias", 0},
    {"Atom", 0},        {"Core2", 0},      {"Penryn", 0},      {"Dunnington", 0}, {"Nehalem", 0},
    {"Athlon", 0},      {"Opteron", 0},    {"Opteron_SSE3", 0}, {"Barcelona", 0}, {"Nano", 0},
    {"Sandybridge", 1}, {"Bobcat", 0},     {"Bulldozer", 1},   {"Piledriver", 1}, {"Haswell", 2},
    {"Steamroller", 1}, {"Excavator", 2},  {"Zen", 2},         {"SkylakeX", 3},   {"Cooperlake", 3},
};

const CoreKind* find_core(const std::string& name) {
  for (const CoreKind& c : kCores)
    if (strcasecmp(c.name, name.c_str()) == 0) return &c;
  return nullptr;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

const std::vector<std::string>& openblas_core_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const CoreKind& c : kCores) v.push_back(c.name);
    return v;
  }();
  return names;
}

std::string openblas_core_name(const std::string& name) {
  const CoreKind* c = find_core(name);
  return c ? c->name : "";
}

int openblas_core_isa(const std::string& core) {
  const CoreKind* c = find_core(core);
  return c ? c->isa : 0;
}

std::string best_openblas_core(const CpuFeatures& cpu) {
  if (cpu.avx512() && cpu.avx512_bf16) return "Cooperlake";
  if (cpu.avx512()) return "SkylakeX";
  if (cpu.avx2 && cpu.fma) return cpu.vendor == "AuthenticAMD" ? "Zen" : "Haswell";
  if (cpu.avx) return "Sandybridge";
  return "Prescott";
}

std::string fallback_openblas_core(const std::string& core) {
  switch (openblas_core_isa(core)) {
    case 3: return "Haswell";
    case 2: return "Sandybridge";
    case 1: return "Prescott";
    default: return "";
  }
}

std::string running_openblas_core() {
  const char* name = openblas_get_corename();
  return name ? name : "";
}

KernelPlan plan_blas_kernel(const CpuFeatures& cpu, const std::string& running, const std::string& user_coretype,
                            bool chosen_by_frugal, bool running_is_correct) {
  KernelPlan plan;
  if (!user_coretype.empty() && openblas_core_name(user_coretype).empty())
    throw Error("OPENBLAS_CORETYPE=" + user_coretype + " names no OpenBLAS kernel (OpenBLAS would silently pick its " +
                "own); use one of " + joined(openblas_core_names()) + ", or unset it to let frugal choose (" +
                best_openblas_core(cpu) + " on this CPU)");
  if (!running_is_correct) {
    plan.restart_with = fallback_openblas_core(running);
    check(!plan.restart_with.empty(), "OpenBLAS's " + running + " kernel computes wrong results on this CPU, and there "
                                      "is no simpler kernel left to try");
    plan.warning = "frugal: OpenBLAS's " + running + " kernel computes wrong results on this CPU (checked against a " +
                   "plain loop); using " + plan.restart_with + " instead";
    return plan;
  }
  const std::string best = best_openblas_core(cpu);
  if (user_coretype.empty() && !chosen_by_frugal && openblas_core_isa(running) < openblas_core_isa(best))
    plan.restart_with = best;
  return plan;
}

bool openblas_sgemm_is_correct() {
  // Sizes that are no multiple of any kernel's blocking, so edge code runs too.
  const int M = 37, N = 29, K = 53;
  std::vector<float> a(M * K), b(K * N), c(M * N), ct(M * N);
  for (int i = 0; i < M * K; ++i) a[i] = static_cast<float>((i * 7919) % 23) / 11.0f - 1.0f;
  for (int i = 0; i < K * N; ++i) b[i] = static_cast<float>((i * 104729) % 19) / 9.0f - 1.0f;
  std::vector<float> bt(N * K);  // b transposed, for the transposed call
  for (int k = 0; k < K; ++k)
    for (int n = 0; n < N; ++n) bt[n * K + k] = b[k * N + n];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f, c.data(), N);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a.data(), K, bt.data(), K, 0.0f, ct.data(), N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double ref = 0, scale = 0;
      for (int k = 0; k < K; ++k) {
        ref += static_cast<double>(a[m * K + k]) * b[k * N + n];
        scale += std::fabs(static_cast<double>(a[m * K + k]) * b[k * N + n]);
      }
      const double tolerance = 1e-5 * scale + 1e-6;
      if (std::fabs(c[m * N + n] - ref) > tolerance || std::fabs(ct[m * N + n] - ref) > tolerance) return false;
    }
  return true;
}

}  // namespace frugal
