#include "train/machine_rates.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/cpu.h"
#include "core/ledger.h"
#include "core/tensor.h"
#include "core/threading.h"
#include "io/atomic_file.h"
#include "kernels/convert.h"
#include "kernels/gemm.h"
#include "train/optimizer.h"
#include "train/precision.h"

namespace frugal {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The best rate of `run` (which does `work` units of work) over repeats lasting about `budget`
// seconds, in units per nanosecond (GFLOP/s for flops, GB/s for bytes).
template <typename Run>
double best_rate(double work, double budget, Run run) {
  run();  // warm-up: packing buffers, threads, pages
  double best = 0;
  const auto start = std::chrono::steady_clock::now();
  do {
    const auto t = std::chrono::steady_clock::now();
    run();
    best = std::max(best, work / seconds_since(t) / 1e9);
  } while (seconds_since(start) < budget);
  return best;
}

}  // namespace

double measure_gemm_gflops(DType dtype, int64_t n, double seconds) {
  std::vector<float> a(n * n), b(n * n), c(n * n);
  for (int64_t i = 0; i < n * n; ++i) {
    a[i] = static_cast<float>(i % 13) / 13.0f;
    b[i] = static_cast<float>(i % 7) / 7.0f;
  }
  const double flops = 2.0 * static_cast<double>(n * n * n);
  if (dtype == DType::F32)
    return best_rate(flops, seconds, [&] { gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n); });
  std::vector<uint16_t> ah(n * n), bh(n * n);
  float_to_half(a.data(), dtype, ah.data(), n * n);
  float_to_half(b.data(), dtype, bh.data(), n * n);
  if (has_half_gemm(dtype))
    return best_rate(flops, seconds, [&] {
      gemm_half(dtype, false, false, n, n, n, 1.0f, ah.data(), n, bh.data(), n, 0.0f, c.data(), n);
    });
  return best_rate(flops, seconds, [&] {
    half_to_float(ah.data(), dtype, a.data(), n * n);
    half_to_float(bh.data(), dtype, b.data(), n * n);
    gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  });
}

double measure_bandwidth_gbs(double seconds) {
  const int64_t n = int64_t{16} << 20;  // floats
  std::vector<float> src(n, 1.0f), dst(n);
  const auto copy = [&] {
    float* d = dst.data();
    const float* s = src.data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) d[i] = s[i] * 1.0001f;
  };
  return best_rate(2.0 * 4.0 * static_cast<double>(n), seconds, copy);  // bytes read + written
}

namespace {
// The least of the seconds `run` reports over `repeats` (after one warm-up).
template <typename Run>
double best_seconds(int repeats, Run run) {
  run();
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) best = std::min(best, run());
  return best;
}
}  // namespace

void measure_optimizer_costs(MachineRates& rates) {
  MemoryLedger scratch;  // never booked into a run's ledger
  LedgerScope scope(scratch);
  constexpr int64_t kParams = int64_t{8} << 20;  // 32 MiB per tensor: out of every cache
  Param p;
  p.value = Tensor::zeros({kParams / 1024, 1024}, DType::F32, MemCategory::Params);
  std::vector<Param*> params = {&p};
  const auto update = [&](Optimizer& optimizer) {
    return best_seconds(3, [&] {
      const Tensor& g = p.ensure_grad();
      std::fill(g.f32(), g.f32() + kParams, 1e-3f);  // (not timed apart: a backward writes it anyway)
      const auto t = std::chrono::steady_clock::now();
      (void)gradients_finite(params);
      optimizer.step(params, 1e-3f);
      zero_grads(params);
      return seconds_since(t);
    });
  };
  rates.adamw_ns_per_param = update(*make_optimizer("adamw", 0.0f)) / kParams * 1e9;
  rates.adamw8bit_ns_per_param = update(*make_optimizer("adamw8bit", 0.0f)) / kParams * 1e9;
  rates.sgd_ns_per_param = update(*make_optimizer("sgd", 0.0f)) / kParams * 1e9;
  p.ensure_grad();
  rates.clip_ns_per_param = best_seconds(3, [&] {
                              const auto t = std::chrono::steady_clock::now();
                              (void)clip_grad_norm(params, 1e9);
                              return seconds_since(t);
                            }) / kParams * 1e9;
}

MachineRates measure_machine_rates() {
  MachineRates r;
  for (size_t i = 0; i < MachineRates::kSizes.size(); ++i) {
    r.gemm_f32_gflops[i] = measure_gemm_gflops(DType::F32, MachineRates::kSizes[i], 0.15);
    if (has_half_gemm(DType::BF16))
      r.gemm_half_gflops[i] = measure_gemm_gflops(DType::BF16, MachineRates::kSizes[i], 0.15);
  }
  r.bandwidth_gbs = measure_bandwidth_gbs(0.3);
  measure_optimizer_costs(r);
  return r;
}

std::string machine_rates_key() {
  return this_cpu().model_name + " | " + std::to_string(num_threads()) + " threads | f32 " + gemm_kernel(DType::F32) +
         " | bf16 " + gemm_kernel(DType::BF16);
}

std::string machine_rates_cache_path() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/frugal/machine_rates.json";
  const char* home = std::getenv("HOME");
  if (home && *home) return std::string(home) + "/.cache/frugal/machine_rates.json";
  return "";
}

namespace {

nlohmann::json read_cache(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nlohmann::json::object();
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    return j.is_object() ? j : nlohmann::json::object();
  } catch (const nlohmann::json::exception&) {
    return nlohmann::json::object();  // a damaged cache is measured again
  }
}

}  // namespace

nlohmann::json machine_rates_json(const MachineRates& r) {
  return {{"gemm_f32_gflops", r.gemm_f32_gflops}, {"gemm_half_gflops", r.gemm_half_gflops},
          {"bandwidth_gbs", r.bandwidth_gbs},       {"sizes", MachineRates::kSizes},
          {"adamw_ns_per_param", r.adamw_ns_per_param}, {"adamw8bit_ns_per_param", r.adamw8bit_ns_per_param},
          {"sgd_ns_per_param", r.sgd_ns_per_param},
          {"clip_ns_per_param", r.clip_ns_per_param},   {"busy_cores", r.busy_cores}};
}

bool machine_rates_from_json(const nlohmann::json& j, MachineRates& r) {
  try {
    if (j.at("sizes").get<std::array<int, 3>>() != MachineRates::kSizes) return false;
    r.gemm_f32_gflops = j.at("gemm_f32_gflops").get<std::array<double, 3>>();
    r.gemm_half_gflops = j.at("gemm_half_gflops").get<std::array<double, 3>>();
    r.bandwidth_gbs = j.at("bandwidth_gbs").get<double>();
    r.adamw_ns_per_param = j.at("adamw_ns_per_param").get<double>();  // (absent in older caches: measured again)
    r.adamw8bit_ns_per_param = j.at("adamw8bit_ns_per_param").get<double>();
    r.sgd_ns_per_param = j.at("sgd_ns_per_param").get<double>();
    r.clip_ns_per_param = j.at("clip_ns_per_param").get<double>();
    r.busy_cores = j.value("busy_cores", 0.0);  // (older caches did not record it)
    return r.bandwidth_gbs > 0 && std::all_of(r.gemm_f32_gflops.begin(), r.gemm_f32_gflops.end(), [](double v) { return v > 0; });
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

void store_machine_rates(const MachineRates& rates) {
  const std::string path = machine_rates_cache_path();
  if (path.empty()) return;
  try {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    nlohmann::json cache = read_cache(path);
    cache[machine_rates_key()] = machine_rates_json(rates);
    write_file_atomic(path, cache.dump(2) + "\n");
  } catch (const std::exception&) {
    // A cache that cannot be written costs the next run two seconds, nothing more.
  }
}

bool reuse_cached_rates(double cached_busy, double busy_now) {
  return cached_busy < kBusyCoresForRates || busy_now >= kBusyCoresForRates;
}

namespace {
std::function<MachineRates()>& rates_measurer() {
  static std::function<MachineRates()> measure = measure_machine_rates;
  return measure;
}
}  // namespace

void set_rates_measurer(std::function<MachineRates()> measure) { rates_measurer() = std::move(measure); }

MachineRates machine_rates() {
  static const MachineRates rates = [] {
    MachineRates r;
    const std::string path = machine_rates_cache_path();
    const nlohmann::json cache = path.empty() ? nlohmann::json::object() : read_cache(path);
    const auto it = cache.find(machine_rates_key());
    const bool usable = it != cache.end() && machine_rates_from_json(*it, r);
    if (usable && r.busy_cores < kBusyCoresForRates) return r;  // (no 30 ms load sample needed)
    const double busy = busy_cores_now();
    if (usable && reuse_cached_rates(r.busy_cores, busy)) return r;
    r = rates_measurer()();
    r.busy_cores = busy;
    store_machine_rates(r);
    return r;
  }();
  return rates;
}

}  // namespace frugal
