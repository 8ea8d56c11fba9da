#pragma once
// A plan of a spec (run/run_spec.h): `frugal plan`, frugal::plan() and Python's frugal.plan().
#include <nlohmann/json.hpp>

#include "run/run_spec.h"

namespace frugal {

// What `frugal plan --json` prints for the spec (with --memory-budget the configurations searched
// and the command that trains the chosen one; with --ranks N each rank's peaks). With `print`, and
// the spec not asking for JSON, the tables of `frugal plan` are printed too.
nlohmann::json plan_run(RunSpec& spec, bool print);

}  // namespace frugal
