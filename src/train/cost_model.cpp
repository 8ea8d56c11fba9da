#include "train/cost_model.h"

#include <algorithm>
#include <cmath>

namespace frugal {

namespace {
// Each byte a step allocates is written once and read about twice (by the next layer, and by
// backward or a recomputation).
constexpr double kPassesPerAllocatedByte = 3.0;
// A block call's fixed cost: OpenMP barriers between its kernels, primitive look-ups.
constexpr double kSecondsPerLayerCall = 20e-6;
}  // namespace

double gemm_gflops_for(const MachineRates& rates, const GemmKey& shape) {
  const auto& table = shape.units == GemmUnits::Half ? rates.gemm_half_gflops : rates.gemm_f32_gflops;
  const double volume = static_cast<double>(shape.m) * static_cast<double>(shape.n) * static_cast<double>(shape.k);
  const double size = std::cbrt(std::max(volume, 1.0));
  const auto& sizes = MachineRates::kSizes;
  if (size <= sizes.front()) return table.front();
  if (size >= sizes.back()) return table.back();
  size_t i = 0;
  while (size > sizes[i + 1]) ++i;
  const double t = std::log(size / sizes[i]) / std::log(static_cast<double>(sizes[i + 1]) / sizes[i]);
  return std::exp(std::log(table[i]) * (1 - t) + std::log(table[i + 1]) * t);
}

StepTimePrediction predict_step_time(const StepWork& work, const MachineRates& rates) {
  StepTimePrediction p;
  for (const auto& [shape, count] : work.gemms.gemms()) {
    const double flops = 2.0 * static_cast<double>(shape.m) * static_cast<double>(shape.n) *
                         static_cast<double>(shape.k) * static_cast<double>(count);
    const double rate = gemm_gflops_for(rates, shape);
    if (rate > 0) p.gemm_s += flops / (rate * 1e9);
  }
  const double bandwidth = rates.bandwidth_gbs * 1e9;
  if (bandwidth > 0) {
    p.memory_s = kPassesPerAllocatedByte * work.step_bytes / bandwidth;
    p.optimizer_s = 1.5 * work.master_bytes / bandwidth;  // the compute copy: masters read, half copy written
  }
  const double update_ns = work.optimizer == "sgd"         ? rates.sgd_ns_per_param
                          : work.optimizer == "adamw8bit" ? rates.adamw8bit_ns_per_param
                                                          : rates.adamw_ns_per_param;
  const double per_param = update_ns + (work.clipped ? rates.clip_ns_per_param : 0.0);
  p.optimizer_s += per_param * 1e-9 * static_cast<double>(work.updated_params);
  p.overhead_s = kSecondsPerLayerCall * static_cast<double>(work.layer_calls);
  return p;
}

}  // namespace frugal
