#pragma once
// Text from a spec's language model (run/run_spec.h: --model, --adapter, --base-precision,
// --tokenizer, --prompt, --tokens, --temperature, --top-k, --seed, --no-kv-cache, --timing):
// `frugal generate`, frugal::generate() and Python's frugal.generate().
#include <functional>
#include <string>

#include "run/run_spec.h"

namespace frugal {

// Called with the prompt, then with each new token's text as soon as it is chosen.
using TextCallback = std::function<void(const std::string& text)>;

// The prompt and its continuation.
std::string generate_run(RunSpec& spec, const TextCallback& on_text = {});

}  // namespace frugal
