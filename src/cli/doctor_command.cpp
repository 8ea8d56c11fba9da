// `frugal doctor`: the CPU, the GEMM kernel that serves each dtype and how it was chosen, measured
// GEMM rates and memory bandwidth (a few seconds), the threads and OpenMP wait policy, and
// warnings about what would make a run slow.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <vector>

#include "cli/commands.h"
#include "run/run_spec.h"
#include "run/spec_options.h"
#include "run/process_setup.h"
#include "core/cpu.h"
#include "core/threading.h"
#include "kernels/blas_kernel.h"
#include "kernels/convert.h"
#include "kernels/gemm.h"
#include "train/machine_rates.h"

namespace frugal::cli {

namespace {

struct DoctorFlags {
  bool json = false;
  bool measure_rates = false;
  int threads = 0;
};

nlohmann::json diagnose() {
  const CpuFeatures& cpu = this_cpu();
  const std::string running = running_openblas_core(), best = best_openblas_core(cpu);
  nlohmann::json j;
  j["cpu"] = {{"model", cpu.model_name}, {"vendor", cpu.vendor}, {"family", cpu.family}, {"model_number", cpu.model},
              {"flags", cpu.flag_names()}, {"logical_cpus", logical_cpus()}, {"physical_cores", physical_cores()}};
  j["threads"] = num_threads();
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  j["omp_wait_policy"] = policy ? policy : "default (spin, then sleep)";
  j["openblas"] = {{"kernel", running}, {"chosen_by", blas_kernel_origin()}, {"best_for_this_cpu", best}};
  j["gemm"] = {{"f32", gemm_kernel(DType::F32)}, {"bf16", gemm_kernel(DType::BF16)}, {"f16", gemm_kernel(DType::F16)}};
  // The cost model's rates measured afresh (and cached for train and plan), and bf16 at 1024^3 the
  // way the layers multiply it (widened where the half units do not serve it).
  MachineRates rates = measure_machine_rates();
  rates.busy_cores = busy_cores_now();
  store_machine_rates(rates);
  j["measured"] = {{"gemm_f32_gflops", rates.gemm_f32_gflops.back()},
                   {"gemm_bf16_gflops", has_half_gemm(DType::BF16) ? rates.gemm_half_gflops.back()
                                                                    : measure_gemm_gflops(DType::BF16, 1024, 0.3)},
                   {"bandwidth_gbs", rates.bandwidth_gbs},
                   {"gemm_f32_gflops_by_size", rates.gemm_f32_gflops},
                   {"sizes", MachineRates::kSizes}};
  j["rates_cache"] = machine_rates_cache_path();
  const double busy = busy_cores_now();
  j["busy_cores"] = busy;
  std::vector<std::string> warnings;
  if (openblas_core_isa(running) < openblas_core_isa(best)) {
    const char* isa[] = {"SSE", "AVX", "AVX2", "AVX-512"};
    warnings.push_back("OpenBLAS runs its " + std::string(openblas_core_isa(running) == 0 ? "generic " : "") + running +
                       " kernel (" + isa[openblas_core_isa(running)] + ", chosen by " + blas_kernel_origin() +
                       ") although this CPU has " + isa[openblas_core_isa(best)] +
                       ": unset OPENBLAS_CORETYPE, or set it to " + best);
  }
  if (num_threads() > logical_cpus())
    warnings.push_back(std::to_string(num_threads()) + " threads on " + std::to_string(logical_cpus()) +
                       " CPUs: oversubscribed, every barrier waits");
  if (busy >= 0.5)
    warnings.push_back("other processes keep " + std::to_string(busy).substr(0, 4) +
                       " cores busy: timings will be noisy and slower");
  j["warnings"] = warnings;
  return j;
}

void print_text(const nlohmann::json& j) {
  const auto& cpu = j["cpu"];
  std::printf("cpu          %s (%s family %d model %d)\n", cpu["model"].get<std::string>().c_str(),
              cpu["vendor"].get<std::string>().c_str(), cpu["family"].get<int>(), cpu["model_number"].get<int>());
  std::string flags;
  for (const auto& f : cpu["flags"]) flags += f.get<std::string>() + " ";
  std::printf("features     %s\n", flags.c_str());
  std::printf("cores        %d physical, %d logical; frugal uses %d threads, OpenMP wait policy %s\n",
              cpu["physical_cores"].get<int>(), cpu["logical_cpus"].get<int>(), j["threads"].get<int>(),
              j["omp_wait_policy"].get<std::string>().c_str());
  std::printf("gemm f32     %s (chosen by %s)\n", j["gemm"]["f32"].get<std::string>().c_str(),
              j["openblas"]["chosen_by"].get<std::string>().c_str());
  std::printf("gemm bf16    %s\n", j["gemm"]["bf16"].get<std::string>().c_str());
  std::printf("gemm f16     %s\n", j["gemm"]["f16"].get<std::string>().c_str());
  const auto& m = j["measured"];
  std::printf("measured     f32 GEMM %.1f GFLOP/s, bf16 GEMM %.1f GFLOP/s (1024^3), memory %.1f GB/s (copy)\n",
              m["gemm_f32_gflops"].get<double>(), m["gemm_bf16_gflops"].get<double>(), m["bandwidth_gbs"].get<double>());
  for (const auto& w : j["warnings"]) std::printf("warning      %s\n", w.get<std::string>().c_str());
  if (j["warnings"].empty()) std::printf("warnings     none\n");
}

}  // namespace

void register_doctor(CLI::App& app) {
  auto flags = std::make_shared<DoctorFlags>();
  CLI::App* cmd = app.add_subcommand("doctor", "the CPU, the GEMM kernels per dtype, measured speeds, warnings");
  cmd->add_flag("--json", flags->json, "print JSON");
  cmd->add_flag("--measure-rates", flags->measure_rates,
                "only measure the cost model's rates and print them as one line of JSON (how train and plan "
                "measure them in a child process; nothing is cached)");
  add_threads_option(*cmd, flags->threads);
  cmd->callback([flags] {
    apply_threads(flags->threads);
    if (flags->measure_rates) {
      std::printf("%s\n", machine_rates_json(measure_machine_rates()).dump().c_str());
      return;
    }
    const nlohmann::json j = diagnose();
    if (flags->json) std::printf("%s\n", j.dump(2).c_str());
    else print_text(j);
  });
}

}  // namespace frugal::cli
