#pragma once
// `frugal lora merge | extract`: fold a PEFT adapter into a model, or extract a low-rank adapter
// from the difference between a fine-tuned model and its base (truncated SVD).
#include <cstdint>
#include <string>

namespace frugal {

struct LoraToolSpec {
  std::string model_dir, adapter_dir, out_dir;            // merge
  std::string base_precision = "fp32", dtype = "fp32";    // merge: the base the adapter was trained on, the output
  std::string base_dir, tuned_dir, targets;               // extract
  int64_t rank = 8;
  double alpha = 0;
  int threads = 0;
};

// W' = W + (alpha / r) B A written as a plain model directory (with the model's tokenizer files).
void lora_merge(const LoraToolSpec& spec);
// A rank-R PEFT adapter from tuned - base, one truncated SVD per module; prints each module's error.
void lora_extract(const LoraToolSpec& spec);

}  // namespace frugal
