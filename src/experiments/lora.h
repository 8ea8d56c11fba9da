#pragma once
// `frugal experiment lora`: pretrain a small GPT on the fortunes text minus one file, fine-tune on
// the held-out file without training, fully, and with LoRA at several ranks; held-out loss,
// trainable numbers, gradient + optimizer bytes, step time, and the merge check. Writes
// DIR/lora.json, DIR/lora.md and DIR/lora.png.
#include <nlohmann/json.hpp>
#include <string>

namespace frugal {

// steps_scale < 1 shortens every training run (for tests).
nlohmann::json run_lora_experiment(const std::string& out_dir, double steps_scale = 1.0);

}  // namespace frugal
