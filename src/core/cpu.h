#pragma once
// What this CPU can do: the cpuid feature bits frugal's kernel choices depend on (checked against
// what the OS saves on a context switch: AVX-512 and AMX state need XCR0 bits as well as cpuid
// bits), the model name, and the core counts.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace frugal {

struct CpuFeatures {
  std::string vendor;      // "GenuineIntel", "AuthenticAMD", ...
  std::string model_name;  // "Intel(R) Xeon(R) Platinum 8488C", from the brand string
  int family = 0, model = 0;
  bool avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_bf16 = false;  // vdpbf16ps: bf16 dot products into fp32
  bool avx512_fp16 = false;  // fp16 arithmetic
  bool amx_bf16 = false;     // AMX tiles with bf16 (OS permission for tile data is asked at first use)

  bool avx512() const { return avx512f && avx512bw && avx512vl && avx512dq; }
  // The flags above that are set, by their /proc/cpuinfo names.
  std::vector<std::string> flag_names() const;
};

// One cpuid query: (leaf, subleaf) -> eax, ebx, ecx, edx.
struct CpuidRegisters {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};
using CpuidFunction = std::function<CpuidRegisters(uint32_t leaf, uint32_t subleaf)>;

// The features from cpuid answers and the OS's XCR0 (enabled register state). Tests feed the
// answers of other CPUs.
CpuFeatures cpu_features_from(const CpuidFunction& cpuid, uint64_t xcr0);

// This machine's CPU (computed once).
const CpuFeatures& this_cpu();

// Physical cores this process may run on (hyper-threads of one core count once), and logical CPUs.
int physical_cores();
int logical_cpus();

// CPU time other processes used per second over a short sample (in cores).
double busy_cores_now();

}  // namespace frugal
