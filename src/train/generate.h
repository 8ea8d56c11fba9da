#pragma once
// Autoregressive sampling from a GPT, on token ids of any vocabulary (byte-level text through
// generate_text).
#include <functional>
#include <string>
#include <vector>

#include "models/causal_lm.h"

namespace frugal {

struct SampleOptions {
  int64_t tokens = 200;
  float temperature = 0.8f;  // 0: greedy
  int64_t top_k = 0;  // 0: sample from the whole distribution
  float top_p = 1.0f;  // nucleus sampling after top-k (train/sampling.h); 1: off
  uint64_t seed = 0;
  // Keys and values of past positions kept (train/next_token.h): the prompt runs once, then one
  // token per forward. false: every token re-runs the whole context (the old path, for comparison).
  // Both give the same logits up to rounding (~1e-6), and the same greedy tokens.
  bool kv_cache = true;
  // Generation ends at the first of these ids (a chat model's end-of-turn and EOS tokens), which is
  // neither returned nor passed to on_token.
  std::vector<int32_t> stop_tokens = {};
};

// Error naming the flag when an option is out of range (--temperature, --tokens, --top-k, --top-p).
void check_sample_options(const SampleOptions& options);

// Continues `prompt` (non-empty, every id < vocab_size) by options.tokens tokens, or fewer when a
// stop token comes, and returns only the continuation; on_token, when given, is called with each new id as soon as it is chosen. The
// context window is the last n_positions tokens (it slides when prompt + continuation exceed them).
std::vector<int32_t> generate_tokens(CausalLm& model, const std::vector<int32_t>& prompt, const SampleOptions& options,
                                     const std::function<void(int32_t)>& on_token = {});

// Byte-level text: the prompt's bytes as token ids (an empty prompt starts a new line), the
// continuation's ids as bytes. Needs vocab_size >= 256.
std::vector<int32_t> byte_tokens(const std::string& text);
std::string generate_text(CausalLm& model, const std::string& prompt, const SampleOptions& options);

}  // namespace frugal
