#pragma once
// One place that sets the thread count for both OpenMP kernels and OpenBLAS.

#include <cstdint>
#include <string>

namespace frugal {

void set_num_threads(int threads);  // <= 0: leave the defaults
// The threads a run uses when none are asked for: OMP_NUM_THREADS when set, else one per physical core.
int default_threads();
int num_threads();

// Elements of a scratch buffer holding `per_thread_elements` for each OpenMP thread. Layers size
// per-thread scratch with this (and kernels index it by omp_get_thread_num()), so that the planner
// and the run book the same bytes.
int64_t per_thread(int64_t per_thread_elements);

// OMP_WAIT_POLICY when the user did not set it: PASSIVE (sleep at barriers) when other processes
// keep at least half a core busy and this run uses more than one thread, else "" (libgomp's default:
// spin a while, then sleep).
std::string plan_wait_policy(double busy_cores, int threads);

}  // namespace frugal
