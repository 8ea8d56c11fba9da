#include "train/generate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "train/next_token.h"
#include "train/sampling.h"

namespace frugal {

void check_sample_options(const SampleOptions& options) {
  check(options.temperature >= 0 && std::isfinite(options.temperature), "--temperature must be >= 0");
  check(options.tokens >= 0, "--tokens must be >= 0");
  check(options.top_k >= 0, "--top-k must be >= 0");
  char got[32];
  std::snprintf(got, sizeof got, "%g", static_cast<double>(options.top_p));
  check(options.top_p > 0 && options.top_p <= 1, std::string("--top-p must be in (0, 1] (1: off), got ") + got);
}

namespace {
void check_request(const CausalLm& model, const std::vector<int32_t>& prompt, const SampleOptions& options) {
  check_sample_options(options);
  check(!prompt.empty(), "generate: the prompt has no tokens");
  for (int32_t id : prompt)
    check(id >= 0 && id < model.vocab_size(), "generate: prompt token id " + std::to_string(id) +
                                                 " is out of range for the model's vocab_size " +
                                                 std::to_string(model.vocab_size()));
}
}  // namespace

std::vector<int32_t> generate_tokens(CausalLm& model, const std::vector<int32_t>& prompt, const SampleOptions& options,
                                     const std::function<void(int32_t)>& on_token) {
  check_request(model, prompt, options);
  std::vector<int32_t> out;
  if (options.tokens == 0) return out;
  // The longest window fed: the prompt and every new token but the last, at most n_positions.
  const int64_t longest = static_cast<int64_t>(prompt.size()) + options.tokens - 1;
  NextTokenLogits next(model, options.kv_cache, std::min(longest, model.max_positions()));
  std::vector<int32_t> tokens = prompt;
  std::vector<float> probs;
  for (int64_t n = 0; n < options.tokens; ++n) {
    int32_t id = 0;
    {
      const Tensor logits = next.next(tokens);  // (1, V), released before on_token
      id = sample_token(logits.f32(), model.vocab_size(), options.temperature, options.top_k, options.top_p,
                        options.seed, static_cast<uint64_t>(n), probs);
    }
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), id) != options.stop_tokens.end()) break;
    tokens.push_back(id);
    out.push_back(id);
    if (on_token) on_token(id);
  }
  return out;
}

std::vector<int32_t> byte_tokens(const std::string& text) {
  std::vector<int32_t> ids;
  for (unsigned char c : text) ids.push_back(c);
  if (ids.empty()) ids.push_back('\n');  // an empty prompt starts a new line
  return ids;
}

std::string generate_text(CausalLm& model, const std::string& prompt, const SampleOptions& options) {
  check(model.vocab_size() >= 256, "generate: byte-level text needs vocab_size >= 256");
  std::string out;
  for (int32_t id : generate_tokens(model, byte_tokens(prompt), options)) out += static_cast<char>(id & 0xff);
  return out;
}

}  // namespace frugal
