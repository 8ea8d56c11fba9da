#include "core/threading.h"

#include <omp.h>

#include <cstdlib>

#include "core/cpu.h"

extern "C" void openblas_set_num_threads(int);

namespace frugal {

void set_num_threads(int threads) {
  if (threads <= 0) return;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

int num_threads() { return omp_get_max_threads(); }

int default_threads() {
  const char* env = std::getenv("OMP_NUM_THREADS");
  return env && std::atoi(env) > 0 ? std::atoi(env) : physical_cores();
}

int64_t per_thread(int64_t per_thread_elements) { return per_thread_elements * omp_get_max_threads(); }

std::string plan_wait_policy(double busy_cores, int threads) {
  return threads > 1 && busy_cores >= 0.5 ? "PASSIVE" : "";
}

}  // namespace frugal
