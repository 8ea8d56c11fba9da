#pragma once
// OpenBLAS's kernels and which one suits a CPU. Debian's OpenBLAS is built with DYNAMIC_ARCH: it
// picks a "core type" when the library loads, from its own CPU tables, or from OPENBLAS_CORETYPE.
// Its tables (0.3.21) do not know the newest CPUs and fall back to Prescott (SSE3) kernels, a
// 6x slower SGEMM on a Sapphire Rapids Xeon. These are the rules frugal uses instead (run/process_setup.h
// applies them before the library's choice is final).
#include <string>
#include <vector>

#include "core/cpu.h"

namespace frugal {

// The names OPENBLAS_CORETYPE accepts (OpenBLAS 0.3.21 on x86-64), as OpenBLAS spells them.
const std::vector<std::string>& openblas_core_names();
// The canonical spelling of `name` (OpenBLAS compares case-insensitively), or "" if it is none.
std::string openblas_core_name(const std::string& name);

// The widest vector ISA a kernel uses: 0 SSE, 1 AVX, 2 AVX2/FMA, 3 AVX-512.
int openblas_core_isa(const std::string& core);

// The kernel for this CPU's features: Cooperlake (AVX-512 with bf16), SkylakeX (AVX-512),
// Haswell (AVX2 + FMA; Zen on AMD), Sandybridge (AVX), else Prescott.
std::string best_openblas_core(const CpuFeatures& cpu);
// The kernel to try when `core` computes wrong results: one ISA level lower ("" below Prescott).
std::string fallback_openblas_core(const std::string& core);

// The kernel the loaded OpenBLAS runs (openblas_get_corename).
std::string running_openblas_core();

// What frugal does about the running kernel at start-up (run/process_setup.h applies it; tests feed
// other CPUs and kernels).
struct KernelPlan {
  std::string restart_with;  // set OPENBLAS_CORETYPE to this and start again; "" keeps the running kernel
  std::string warning;       // one line for stderr, or ""
};
// `running`: the kernel OpenBLAS runs; `user_coretype`: OPENBLAS_CORETYPE as the user set it ("" if
// unset); `chosen_by_frugal`: frugal set it (a kernel OpenBLAS picked by itself is upgraded to the
// CPU's best, one frugal picked is not: it may be the fallback from a failed check);
// `running_is_correct`: the SGEMM check's verdict on the running kernel. Error when the user's
// OPENBLAS_CORETYPE names no kernel, or no kernel computes correctly.
KernelPlan plan_blas_kernel(const CpuFeatures& cpu, const std::string& running, const std::string& user_coretype,
                            bool chosen_by_frugal, bool running_is_correct);

// A small SGEMM through OpenBLAS (odd sizes, both transposes) against a plain loop in double:
// true when every element agrees to float rounding.
bool openblas_sgemm_is_correct();

}  // namespace frugal
