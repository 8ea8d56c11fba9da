#include "run/process_setup.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/error.h"
#include "core/threading.h"
#include "kernels/blas_kernel.h"
#include "kernels/gemm.h"

namespace frugal {

namespace {

// Set by frugal on the process it re-executes: the kernel it chose, and what OpenBLAS had picked.
constexpr const char* kChosenKernel = "FRUGAL_CHOSEN_CORETYPE";
constexpr const char* kReplacedKernel = "FRUGAL_REPLACED_CORETYPE";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The threads this run will use (run/run_spec.h apply_threads): --threads N, else default_threads().
int threads_requested(char** argv) {
  for (char** a = argv + 1; *a; ++a) {
    const std::string arg = *a;
    if (arg == "--threads" && a[1] && std::atoi(a[1]) > 0) return std::atoi(a[1]);
    if (arg.rfind("--threads=", 0) == 0 && std::atoi(arg.c_str() + 10) > 0) return std::atoi(arg.c_str() + 10);
  }
  return default_threads();
}

[[noreturn]] void restart(char** argv) {
  std::fflush(nullptr);
  ::execv("/proc/self/exe", argv);
  throw Error(std::string("cannot restart frugal to apply its CPU settings: ") + std::strerror(errno));
}

}  // namespace

void prepare_process(char** argv) {
  const std::string chosen = env(kChosenKernel);
  const std::string user = chosen.empty() ? env("OPENBLAS_CORETYPE") : "";
  std::string running = running_openblas_core();
  const std::string pretend = env("FRUGAL_TEST_OPENBLAS_CORE");
  if (!pretend.empty() && chosen.empty()) running = pretend;
  const bool correct = openblas_sgemm_is_correct() && env("FRUGAL_TEST_WRONG_KERNEL") != running;
  const KernelPlan plan = plan_blas_kernel(this_cpu(), running, user, !chosen.empty(), correct);
  if (!plan.warning.empty()) std::fprintf(stderr, "%s\n", plan.warning.c_str());

  bool again = false;
  if (!plan.restart_with.empty()) {
    ::setenv("OPENBLAS_CORETYPE", plan.restart_with.c_str(), 1);
    ::setenv(kChosenKernel, plan.restart_with.c_str(), 1);
    if (env(kReplacedKernel).empty()) ::setenv(kReplacedKernel, running.c_str(), 1);
    again = true;
  }
  const int threads = threads_requested(argv);
  if (env("OMP_WAIT_POLICY").empty() && env("FRUGAL_WAIT_POLICY_DECIDED").empty()) {
    const std::string policy = plan_wait_policy(threads > 1 ? busy_cores_now() : 0.0, threads);
    ::setenv("FRUGAL_WAIT_POLICY_DECIDED", policy.empty() ? "default" : policy.c_str(), 1);
    if (!policy.empty()) {
      ::setenv("OMP_WAIT_POLICY", policy.c_str(), 1);
      again = true;
    }
  }
  if (!again) return;
  // Each restart lowers the kernel or decides the policy once, so two or three are the most a start
  // needs; more means a rule above is wrong, and looping would hang the user's command.
  const int restarts = std::atoi(env("FRUGAL_RESTARTS").c_str()) + 1;
  check(restarts <= 4, "frugal restarted itself " + std::to_string(restarts - 1) + " times to set up its CPU kernels; "
                       "giving up (set OPENBLAS_CORETYPE and OMP_WAIT_POLICY yourself to skip this)");
  ::setenv("FRUGAL_RESTARTS", std::to_string(restarts).c_str(), 1);
  restart(argv);
}

void check_library_process() {
  static std::once_flag once;
  std::call_once(once, [] {
    const std::string running = running_openblas_core();
    const bool correct = openblas_sgemm_is_correct();
    const KernelPlan plan = plan_blas_kernel(this_cpu(), running, env("OPENBLAS_CORETYPE"), false, correct);
    if (!plan.warning.empty()) std::fprintf(stderr, "%s\n", plan.warning.c_str());
    if (plan.restart_with.empty()) return;
    check(correct, "OpenBLAS's " + running + " kernel fails frugal's SGEMM check on this CPU: set "
                   "OPENBLAS_CORETYPE=" + plan.restart_with + " before this process starts");
    std::fprintf(stderr,
                 "frugal: warning: OpenBLAS runs its %s kernel; the frugal tool runs %s on this CPU (faster): set "
                 "OPENBLAS_CORETYPE=%s before this process starts for the same kernel\n",
                 running.c_str(), plan.restart_with.c_str(), plan.restart_with.c_str());
  });
}

nlohmann::json compute_description() {
  return {{"cpu", this_cpu().model_name},
          {"gemm_f32", gemm_kernel(DType::F32) + " (chosen by " + blas_kernel_origin() + ")"},
          {"gemm_bf16", gemm_kernel(DType::BF16)},
          {"gemm_f16", gemm_kernel(DType::F16)},
          {"threads", num_threads()}};
}

std::string blas_kernel_origin() {
  const std::string chosen = env(kChosenKernel);
  if (!chosen.empty()) return "frugal (OpenBLAS had picked " + env(kReplacedKernel) + ")";
  return env("OPENBLAS_CORETYPE").empty() ? "OpenBLAS" : "user (OPENBLAS_CORETYPE)";
}

}  // namespace frugal
