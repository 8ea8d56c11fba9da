#pragma once
// Text from a spec's language model (run/run_spec.h: --model, --adapter, --base-precision,
// --tokenizer, --prompt or --messages with --chat-template and --chat-template-kwargs, --tokens,
// --temperature, --top-k, --top-p, --seed, --no-kv-cache, --timing): `frugal generate`,
// frugal::generate() and Python's frugal.generate().
#include <functional>
#include <string>

#include "run/run_spec.h"

namespace frugal {

// Called with the prompt (empty with --messages), then with each new token's text as soon as it is
// chosen.
using TextCallback = std::function<void(const std::string& text)>;

// The prompt and its continuation; with --messages the reply alone (without its end-of-turn token).
std::string generate_run(RunSpec& spec, const TextCallback& on_text = {});

}  // namespace frugal
