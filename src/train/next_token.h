#pragma once
// The logits of the token after a growing sequence, one call per generated token, with or without
// a KV cache. The context is the sequence's last n_positions tokens (the window slides by one token
// per step past n_positions), in both modes.
//   Without a cache every call runs forward_only over the whole window (the logits of every position
//   are computed, the last one's returned).
//   With a cache the cache holds the keys and values of the window the previous call saw; when the
//   new window extends it (the sequence grew and the window did not slide), only the new tokens run
//   (CausalLm::forward_cached: the prompt once, then one token per call). Otherwise (the window slid:
//   learned absolute positions move every cached key; or the sequence is not an extension) the
//   cache is cleared and refilled from the whole window, which costs what a call without the cache
//   costs. docs/DESIGN-NOTES.md "KV-cached generation".
#include <optional>
#include <vector>

#include "models/causal_lm.h"

namespace frugal {

class NextTokenLogits {
 public:
  // capacity: the positions the cache holds (1..n_positions): the longest window the calls will
  // see; a longer one is a frugal::Error. Ignored without a cache.
  NextTokenLogits(CausalLm& model, bool kv_cache, int64_t capacity);

  // Logits (1, V) fp32 of the token after `tokens` (non-empty, ids already in the vocabulary).
  Tensor next(const std::vector<int32_t>& tokens);
  // The cache, or null without one.
  const KvCache* cache() const { return cache_ ? &*cache_ : nullptr; }

 private:
  Tensor next_cached(const std::vector<int32_t>& window);
  Tensor next_full(const std::vector<int32_t>& window);

  CausalLm& model_;
  RunContext rc_;
  std::optional<KvCache> cache_;
  std::vector<int32_t> cached_;  // the tokens whose keys and values the cache holds, positions 0..
};

}  // namespace frugal
