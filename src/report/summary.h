#pragma once
// The summary JSON of `frugal train --summary` (DESIGN.md), metrics lines, and the OS's view of memory.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/ledger.h"
#include "train/trainer.h"

namespace frugal {

nlohmann::json memory_json(const MemorySnapshot& s);  // {"params", ..., "total"}

// Peak resident set size of this process (getrusage), in bytes.
int64_t peak_rss_bytes();

double median(std::vector<double> values);

struct RunFacts {
  std::vector<StepRecord> steps;
  bool token_model = true;  // tokens_per_s (GPT) or samples_per_s
  int64_t samples_per_step = 0;
  int64_t tokens_per_sample = 1;
  int64_t total_params = 0, trainable_params = 0, layer_count = 0;
  MemorySnapshot measured, predicted;
  MemorySnapshot at_peak;  // live bytes by category when the total peaked
  float final_loss_scale = 1.0f;  // the loss scaler's scale after the last step
  nlohmann::json kernels = nlohmann::json::object();  // Model::kernels (train/planner.h)
};

// The kernels' lines of `plan` and `train`'s memory report: "lm_head: fused with cross-entropy,
// chunk_rows 256, logits_scratch 49.1 MiB".
void print_kernels(const nlohmann::json& kernels);

nlohmann::json make_summary(const RunFacts& facts);

// One line of --metrics (JSON lines).
nlohmann::json step_metrics(const StepRecord& r, const MemoryLedger& ledger);

}  // namespace frugal
