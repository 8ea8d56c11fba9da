#pragma once
// What a training checkpoint records of a quantised LoRA base (--base-precision nf4|int8). The base
// is not written into the checkpoint: it is frozen, so it is what the run started from, and
// quantising is deterministic, so --resume rebuilds it exactly from the same source (the --model
// directory, or the flags and seed of a fresh model). The record names that directory (absolute)
// and each of its files' size and CRC-32, so that a resumed run refuses a base that has changed.
#include <nlohmann/json.hpp>
#include <string>

namespace frugal {

// {"model_dir": absolute path or "" (a fresh model), "files": {name: file_fingerprint}}. The files
// are config.json, the safetensors and their index; fingerprints are computed once per file
// version (size, modification time) in a process, so periodic checkpoints do not reread the base.
nlohmann::json record_quantized_base(const std::string& model_dir);

// The directory a resumed run loads the base from ("" for a fresh model), after checking that every
// recorded file is there unchanged and no weights file was added; a one-line error naming the file
// otherwise.
std::string verify_quantized_base(const nlohmann::json& record, const std::string& checkpoint_dir);

}  // namespace frugal
