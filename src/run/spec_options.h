#pragma once
// The keys of a run: one CLI11 option per key, registered on a command (`frugal train` and its
// siblings) or on a bare parser (a --config file's and a Python spec dict's keys go through the same
// options, so they are converted and range-checked exactly as flags are).
#include <CLI/CLI.hpp>

#include "run/run_spec.h"

namespace frugal {

// Every key `command` reads, bound to `spec`'s fields, and --config FILE.
void add_spec_options(CLI::App& app, RunSpec& spec, Command command);

// --threads N (also for the commands outside the run layer: doctor, lora, svd, experiment).
void add_threads_option(CLI::App& app, int& threads);

}  // namespace frugal
