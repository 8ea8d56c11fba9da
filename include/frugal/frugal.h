#pragma once
// frugal's public C++ API: a run described once, by the keys of its config file (the long flag
// names without dashes: {"arch": "llama", "lora-rank": 8, "steps": 20}; "lora_rank" is the same
// key), and run by the same library code as `frugal train | plan | grad | generate`. A spec may hold
// "config": "RUN.yaml" to start from a file (its own keys win over the file's). Every refusal is a
// frugal::Error with the command-line tool's one-line message.
//
//   find_package(frugal REQUIRED)
//   target_link_libraries(app PRIVATE frugal::frugal)
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "frugal/error.h"

namespace frugal {

// What `frugal plan --json` prints for the spec.
nlohmann::json plan(const nlohmann::json& spec);

// Trains as `frugal train` does (progress on stderr, outputs the spec names written) and returns
// the run summary. `on_step`, when given, receives each step's metrics ({"step" (1-based), "loss",
// "lr", "grad_norm", "seconds", ...}: the --metrics line) and may return false to stop after that
// step: the summary then says "stopped_early": true, and with "save-every" a checkpoint is written
// at that step, so "resume" continues from it.
using StepCallback = std::function<bool(const nlohmann::json& step)>;
nlohmann::json train(const nlohmann::json& spec, const StepCallback& on_step = {});

// The prompt and its continuation, as `frugal generate` prints them ("model", "prompt", "tokens",
// "temperature", "top-k", "top-p", "seed", "adapter", ...; with "messages": a JSON file of a
// conversation, the reply alone). `on_text`, when given, receives the prompt and then each new
// token's text as soon as it is chosen.
std::string generate(const nlohmann::json& spec, const std::function<void(const std::string&)>& on_text = {});

// The token ids of `text` under a tokenizer (a tokenizer.json, or a directory with one or with
// GPT-2's vocab.json + merges.txt); byte values for an empty `tokenizer`.
std::vector<int32_t> tokenize(const std::string& tokenizer, const std::string& text);

// A dense host array: dtype "F32", "F64", "I32" or "I64" (safetensors' names), row-major.
struct Array {
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

struct Gradients {
  double loss = 0;                       // mean over the batch's counted items
  std::map<std::string, Array> tensors;  // every trainable parameter's gradient (F32) by name
};

// One forward + backward of the spec's model ("model" is required) on a batch {"inputs", "targets"},
// no update: what `frugal grad` writes.
Gradients grad(const nlohmann::json& spec, const std::map<std::string, Array>& batch);

}  // namespace frugal
