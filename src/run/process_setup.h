#pragma once
// What runs first in main(): the settings that OpenBLAS (its kernel, OPENBLAS_CORETYPE) and libgomp
// (OMP_WAIT_POLICY) read from the environment when they load. Changing one means starting the
// process again with it set, so frugal re-executes itself (same pid, same arguments) when a setting
// must change; see docs/DESIGN-NOTES.md "CPU kernels".
#include <nlohmann/json.hpp>
#include <string>

namespace frugal {

// Applies plan_blas_kernel (kernels/blas_kernel.h) and plan_wait_policy (core/threading.h): returns
// when this process runs with the right kernel and policy, re-executes it otherwise; Error for an
// OPENBLAS_CORETYPE that names no kernel. Test-only switches (environment): FRUGAL_TEST_OPENBLAS_CORE=NAME behaves as if OpenBLAS had
// picked NAME; FRUGAL_TEST_WRONG_KERNEL=NAME as if kernel NAME failed the SGEMM check.
void prepare_process(char** argv);

// The same check for a process frugal did not start (the C++ API's and Python's): it cannot
// re-execute its host, so a running kernel that fails the SGEMM check is an Error naming the
// OPENBLAS_CORETYPE to set before the process starts, and one the tool would replace with a faster
// kernel is a warning on stderr saying the same. Once per process; the public API calls it first.
void check_library_process();

// How the running kernel was chosen, for `frugal doctor` and run headers: "OpenBLAS", "user"
// (OPENBLAS_CORETYPE) or "frugal" (and what it replaced).
std::string blas_kernel_origin();

// The summary's "compute": {"cpu", "gemm_f32", "gemm_bf16", "gemm_f16", "threads"}: which kernel
// serves each dtype in this process.
nlohmann::json compute_description();

}  // namespace frugal
