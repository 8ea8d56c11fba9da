#pragma once
// `frugal experiment mixed-precision`: the demo GPT trained from the same seed in fp32, fp16 (FP32
// masters, dynamic loss scaling), bf16, and fp16 without master weights: loss curves, memory by
// category, skipped steps, the fraction of gradient values fp16 flushes to zero without loss
// scaling (a histogram of gradient exponents), and the update/weight ratios that explain why
// updates vanish without the master copy. Writes DIR/mixed-precision.{json,md} and PNG plots.
#include <nlohmann/json.hpp>
#include <string>

namespace frugal {

// steps_scale < 1 shortens every training run (for tests).
nlohmann::json run_mixed_precision_experiment(const std::string& out_dir, double steps_scale = 1.0);

}  // namespace frugal
