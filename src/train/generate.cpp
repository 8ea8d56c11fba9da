#include "train/generate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "train/executor.h"

namespace frugal {

std::string generate_text(Gpt& model, const std::string& prompt, const SampleOptions& options) {
  const GptConfig& config = model.gpt_config();
  check(config.vocab_size >= 256, "generate: byte-level text needs vocab_size >= 256");
  check(options.temperature >= 0 && std::isfinite(options.temperature), "--temperature must be >= 0");
  check(options.tokens >= 0, "--tokens must be >= 0");
  std::vector<int32_t> tokens;
  for (unsigned char c : prompt) tokens.push_back(c);
  if (tokens.empty()) tokens.push_back('\n');  // an empty prompt starts a new line
  RunContext rc;
  rc.training = false;
  std::string out;
  const int64_t V = config.vocab_size;
  std::vector<float> probs(static_cast<size_t>(V));
  for (int64_t n = 0; n < options.tokens; ++n) {
    const int64_t T = std::min<int64_t>(static_cast<int64_t>(tokens.size()), config.n_positions);
    Tensor input = Tensor::empty({1, T}, DType::I32, MemCategory::Activations);
    std::copy(tokens.end() - T, tokens.end(), input.i32());
    Tensor logits = forward_only(model, input, rc);  // (1, T, V)
    const float* last = logits.f32() + (T - 1) * V;
    int32_t next = 0;
    if (options.temperature == 0) {
      next = static_cast<int32_t>(std::max_element(last, last + V) - last);
    } else {
      float threshold = -INFINITY;
      if (options.top_k > 0 && options.top_k < V) {
        std::vector<float> sorted(last, last + V);
        std::nth_element(sorted.begin(), sorted.begin() + (options.top_k - 1), sorted.end(), std::greater<float>());
        threshold = sorted[options.top_k - 1];
      }
      const float mx = *std::max_element(last, last + V);
      double sum = 0;
      for (int64_t v = 0; v < V; ++v) {
        probs[v] = last[v] < threshold ? 0.0f : std::exp((last[v] - mx) / options.temperature);
        sum += probs[v];
      }
      double u = rng_uniform(options.seed, 0x5A3E, static_cast<uint64_t>(n)) * sum;
      next = static_cast<int32_t>(V - 1);
      for (int64_t v = 0; v < V; ++v) {
        u -= probs[v];
        if (u < 0) {
          next = static_cast<int32_t>(v);
          break;
        }
      }
    }
    tokens.push_back(next);
    out += static_cast<char>(next & 0xff);
  }
  return out;
}

}  // namespace frugal
