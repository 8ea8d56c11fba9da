#pragma once
// Counts the matrix products a pass does, by shape and by the kind of unit that multiplies them,
// whether the kernels run or not: the planner runs a configuration through a measuring ledger (no
// kernels) under a WorkMeterScope, and the cost model (train/cost_model.h) turns the counts into a
// predicted step time with the machine's measured rates.
#include <cstdint>
#include <map>
#include <tuple>

namespace frugal {

// Which units multiply: fp32 (OpenBLAS, or half inputs widened for it) or the CPU's half units.
enum class GemmUnits : int { F32, Half };

struct GemmKey {
  int64_t m, n, k;
  GemmUnits units;
  auto operator<=>(const GemmKey&) const = default;
};

class WorkMeter {
 public:
  void add_gemm(int64_t m, int64_t n, int64_t k, GemmUnits units, int64_t count) { gemms_[{m, n, k, units}] += count; }
  const std::map<GemmKey, int64_t>& gemms() const { return gemms_; }  // shape -> products of that shape
  double gemm_flops() const;
  void clear() { gemms_.clear(); }

 private:
  std::map<GemmKey, int64_t> gemms_;
};

// Routes count_gemm of this thread to `meter` while in scope.
class WorkMeterScope {
 public:
  explicit WorkMeterScope(WorkMeter& meter);
  ~WorkMeterScope();
  WorkMeterScope(const WorkMeterScope&) = delete;
  WorkMeterScope& operator=(const WorkMeterScope&) = delete;

 private:
  WorkMeter* previous_;
};

// `count` products op(A) (m x k) times op(B) (k x n) on `units`; nothing without a meter in scope.
void count_gemm(int64_t m, int64_t n, int64_t k, GemmUnits units, int64_t count = 1);

}  // namespace frugal
