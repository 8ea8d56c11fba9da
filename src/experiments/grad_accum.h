#pragma once
// `frugal experiment grad-accum`: measures the accumulation identities (and where BatchNorm breaks
// them) and writes DIR/grad-accum.json, DIR/grad-accum.md and DIR/grad-accum.png.
#include <nlohmann/json.hpp>
#include <string>

namespace frugal {

nlohmann::json run_grad_accum_experiment(const std::string& out_dir);

}  // namespace frugal
