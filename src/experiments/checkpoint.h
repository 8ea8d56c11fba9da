#pragma once
// `frugal experiment checkpoint`: deep MLP chains (and a GPT) under store-all, memory-poor and sqrt,
// measured: activation bytes, block forwards and step time against the number of blocks, fitted
// exponents, memory timelines. Writes DIR/checkpoint.json, .md and PNG plots.
#include <nlohmann/json.hpp>
#include <string>

namespace frugal {

// max_blocks: the largest MLP chain (a power of two >= 8).
nlohmann::json run_checkpoint_experiment(const std::string& out_dir, int max_blocks = 512);

}  // namespace frugal
