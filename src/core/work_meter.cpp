#include "core/work_meter.h"

namespace frugal {

namespace {
thread_local WorkMeter* g_meter = nullptr;
}

double WorkMeter::gemm_flops() const {
  double flops = 0;
  for (const auto& [key, count] : gemms_)
    flops += 2.0 * static_cast<double>(key.m) * static_cast<double>(key.n) * static_cast<double>(key.k) *
             static_cast<double>(count);
  return flops;
}

WorkMeterScope::WorkMeterScope(WorkMeter& meter) : previous_(g_meter) { g_meter = &meter; }
WorkMeterScope::~WorkMeterScope() { g_meter = previous_; }

void count_gemm(int64_t m, int64_t n, int64_t k, GemmUnits units, int64_t count) {
  if (g_meter && m > 0 && n > 0 && k > 0 && count > 0) g_meter->add_gemm(m, n, k, units, count);
}

}  // namespace frugal
