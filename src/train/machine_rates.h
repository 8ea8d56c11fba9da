#pragma once
// What this machine does per second, measured in about two seconds: GEMM rates at a few sizes, for
// fp32 and for bf16 the way frugal multiplies it (on the half units, or widened), and the memory
// bandwidth of a parallel copy. The cost model (train/cost_model.h) predicts step times from them;
// `frugal doctor` shows them. Cached per machine (CPU, threads, kernels) in the user's cache
// directory, so a run measures them once.
#include <array>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/dtype.h"

namespace frugal {

struct MachineRates {
  static constexpr std::array<int, 3> kSizes = {64, 256, 1024};  // cube sizes n of the measured GEMMs
  std::array<double, 3> gemm_f32_gflops{};   // at kSizes, fp32
  std::array<double, 3> gemm_half_gflops{};  // at kSizes, bf16 on the half units (0 where there are none)
  double bandwidth_gbs = 0;                  // bytes read + written per second by a parallel copy
  // An optimizer step's cost per fp32 parameter, as the trainer runs it (finite check, update, zeroed
  // gradient), and global-norm clipping's: compute-bound loops, not copies.
  double adamw_ns_per_param = 0, adamw8bit_ns_per_param = 0, sgd_ns_per_param = 0, clip_ns_per_param = 0;
  // Cores other processes kept busy just before the measurement (core/cpu.h busy_cores_now): rates
  // taken on a busy machine are kept only until one is measured on a quiet one.
  double busy_cores = 0;
};

// Other processes' load (in cores) from which a measurement counts as taken on a busy machine.
constexpr double kBusyCoresForRates = 0.5;
// Whether rates measured with cached_busy cores busy serve a run that sees busy_now: yes, unless
// they were taken on a busy machine and this one is quiet now.
bool reuse_cached_rates(double cached_busy, double busy_now);

// GFLOP/s of an (n x n) x (n x n) product of `dtype` as frugal's layers run it: bf16/fp16 on the
// half units where kernels/gemm.h has_half_gemm, else widened to fp32 (the widening timed too).
// About `seconds` of repeats, the best one.
double measure_gemm_gflops(DType dtype, int64_t n, double seconds);
double measure_bandwidth_gbs(double seconds);  // a parallel copy of 64 MiB
// Fills the optimizer costs of `rates` from steps on 8M parameters (in a ledger of their own).
void measure_optimizer_costs(MachineRates& rates);

MachineRates measure_machine_rates();

// How machine_rates() measures when the cache cannot serve it: measure_machine_rates() in this
// process unless replaced. The CLI measures in a child process (run/rates_process.h): the buffers a
// measurement touches (about 150 MiB) must not count in a run's peak RSS, which --memory-budget bounds.
void set_rates_measurer(std::function<MachineRates()> measure);

// The rates as the cache stores them, and back (false for an entry that is incomplete or of other sizes).
nlohmann::json machine_rates_json(const MachineRates& rates);
bool machine_rates_from_json(const nlohmann::json& j, MachineRates& rates);

// What the rates depend on: CPU, threads, the kernel of each dtype.
std::string machine_rates_key();
// The rates for this machine: from the cache file (machine_rates_cache_path()) when it holds this
// key, else measured and written there (atomically; a cache that cannot be written is skipped). A
// cached entry measured on a busy machine is measured again when the machine is quiet now (a test
// suite or a compiler beside the first run once made the cost model predict 22 s for a 17 s step).
MachineRates machine_rates();
// $XDG_CACHE_HOME/frugal/machine_rates.json, else ~/.cache/frugal/machine_rates.json ("" if neither).
std::string machine_rates_cache_path();
void store_machine_rates(const MachineRates& rates);  // into the cache under this machine's key

}  // namespace frugal
