#include "train/next_token.h"

#include <algorithm>

#include "core/error.h"
#include "train/executor.h"

namespace frugal {

namespace {
// (1, n) int32 token ids: tokens[begin, end).
Tensor token_tensor(const std::vector<int32_t>& tokens, size_t begin, size_t end) {
  Tensor t = Tensor::empty({1, static_cast<int64_t>(end - begin)}, DType::I32, MemCategory::Activations);
  std::copy(tokens.begin() + static_cast<std::ptrdiff_t>(begin), tokens.begin() + static_cast<std::ptrdiff_t>(end),
            t.i32());
  return t;
}
}  // namespace

NextTokenLogits::NextTokenLogits(CausalLm& model, bool kv_cache, int64_t capacity) : model_(model) {
  rc_.training = false;
  if (kv_cache) cache_.emplace(model.make_kv_cache(capacity));
}

Tensor NextTokenLogits::next(const std::vector<int32_t>& tokens) {
  check(!tokens.empty(), "generate: no tokens to continue");
  const size_t window = std::min<size_t>(tokens.size(), static_cast<size_t>(model_.max_positions()));
  const std::vector<int32_t> last(tokens.end() - static_cast<std::ptrdiff_t>(window), tokens.end());
  return cache_ ? next_cached(last) : next_full(last);
}

Tensor NextTokenLogits::next_full(const std::vector<int32_t>& window) {
  const int64_t T = static_cast<int64_t>(window.size()), V = model_.vocab_size();
  const Tensor logits = forward_only(model_, token_tensor(window, 0, window.size()), rc_);  // (1, T, V)
  return logits.view({T, V}).slice_rows(T - 1, T);                                         // (1, V)
}

Tensor NextTokenLogits::next_cached(const std::vector<int32_t>& window) {
  KvCache& cache = *cache_;
  check(static_cast<int64_t>(window.size()) <= cache.capacity(),
        "generate: a context of " + std::to_string(window.size()) + " tokens exceeds the kv cache's " +
            std::to_string(cache.capacity()) + " positions");
  // Position i of the cache is window[i]: usable only when the window extends what it holds.
  const bool extends = cached_.size() < window.size() && std::equal(cached_.begin(), cached_.end(), window.begin());
  if (!extends) {
    cache.clear();
    cached_.clear();
  }
  const size_t from = cached_.size();
  Tensor logits = model_.forward_cached(token_tensor(window, from, window.size()), cache, rc_);  // (1, V)
  cached_ = window;
  return logits;
}

}  // namespace frugal
