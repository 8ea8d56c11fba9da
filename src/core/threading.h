#pragma once
// One place that sets the thread count for both OpenMP kernels and OpenBLAS.

#include <cstdint>

namespace frugal {

void set_num_threads(int threads);  // <= 0: leave the defaults
int num_threads();

// Elements of a scratch buffer holding `per_thread_elements` for each OpenMP thread. Layers size
// per-thread scratch with this (and kernels index it by omp_get_thread_num()), so that the planner
// and the run book the same bytes.
int64_t per_thread(int64_t per_thread_elements);

}  // namespace frugal
