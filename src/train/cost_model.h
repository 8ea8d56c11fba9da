#pragma once
// Predicts the time of one optimizer step from the work the planner counted while it walked the
// step's schedule (train/planner.h): every matrix product with its shape (recomputation included),
// the bytes the step's tensors were allocated with (each written once and read about twice), and
// the optimizer step, priced with the machine's measured GEMM rates, bandwidth and optimizer cost per
// parameter (train/machine_rates.h). No per-model constants: what differs between
// configurations of one model (micro-batch sizes, recomputed forwards, precision) is what it counts.
#include <cstdint>
#include <string>

#include "core/work_meter.h"
#include "train/machine_rates.h"

namespace frugal {

struct StepWork {
  WorkMeter gemms;               // the step's matrix products
  double step_bytes = 0;         // bytes allocated during the step (activations, workspace, transients)
  int64_t updated_params = 0;    // trainable parameters the optimizer step updates
  std::string optimizer;         // "adamw" | "sgd"
  bool clipped = false;          // global-norm clipping runs
  double master_bytes = 0;       // mixed precision: fp32 masters, the compute copy rounded from them
  int64_t layer_calls = 0;       // block forward and backward calls (each costs thread barriers)
};

struct StepTimePrediction {
  double gemm_s = 0, memory_s = 0, optimizer_s = 0, overhead_s = 0;
  double total() const { return gemm_s + memory_s + optimizer_s + overhead_s; }
};

// GFLOP/s for an (m x k) (k x n) product on `units`: the measured rate at the cube of the same
// volume, interpolated in log-log between the measured sizes (flat beyond them).
double gemm_gflops_for(const MachineRates& rates, const GemmKey& shape);

StepTimePrediction predict_step_time(const StepWork& work, const MachineRates& rates);

}  // namespace frugal
