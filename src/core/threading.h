#pragma once
// One place that sets the thread count for both OpenMP kernels and OpenBLAS.

namespace frugal {

void set_num_threads(int threads);  // <= 0: leave the defaults
int num_threads();

}  // namespace frugal
