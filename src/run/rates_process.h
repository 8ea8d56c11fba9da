#pragma once
// The machine's rates (train/machine_rates.h) measured in a child process: `frugal doctor
// --measure-rates` run from this executable, its one line of JSON read back. A measurement touches
// about 150 MiB (a 64 MiB parallel copy both ways, 8M parameters of optimizer state), which in this
// process would raise the peak RSS that --memory-budget and --memory-limit bound; in a child it costs
// the child, and the parent reports what it cost (seconds, peak RSS) instead of hiding it.
#include <cstdint>
#include <optional>

#include "train/machine_rates.h"

namespace frugal {

struct RatesMeasurement {
  double seconds = 0;          // wall time of the child
  int64_t peak_rss_bytes = 0;  // the child's peak RSS (getrusage of the reaped child)
};

// Makes machine_rates() measure through measure_rates_in_child_process() (single-process runs only:
// under MPI every rank would start one).
void measure_rates_in_child_processes();

// Runs `frugal doctor --measure-rates --threads N` with this process's threads and environment (the
// same kernels, so the rates are this run's); Error with the child's message if it fails.
MachineRates measure_rates_in_child_process();

// The child measurement this process made, if any (for the run summary's "rates_measurement").
std::optional<RatesMeasurement> last_rates_measurement();

// Prints what the child measurement cost to stderr, once, if there was one. Commands call it with
// their first report (train's header, plan's output), not when measuring: a run refused later (a
// missing shard, a plan over --memory-limit) still ends in one line, its error.
void report_rates_measurement();

}  // namespace frugal
