#pragma once
// The keys and values of the positions a GPT has already seen, for generation one token at a time
// (one sequence, B = 1). Allocated whole when made, for `capacity` positions (generation sizes it
// for the run: min(n_positions, prompt + new tokens)), in the ledger as Activations: it is state
// derived from the input and kept between forwards, as activations are kept between layers, not
// scratch that lives during one call (docs/DESIGN-NOTES.md "KV-cached generation").
#include "core/tensor.h"

namespace frugal {

class KvCache {
 public:
  // keys and values: (layers, heads, capacity, head_dim) fp32 each, zeroed.
  KvCache(int64_t layers, int64_t heads, int64_t capacity, int64_t head_dim);
  KvCache(KvCache&&) = default;  // one owner: a copy would share the tensors but not the length
  KvCache& operator=(KvCache&&) = default;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t length() const { return length_; }  // positions filled: 0 .. length-1
  int64_t capacity() const { return keys_.dim(2); }
  int64_t layers() const { return keys_.dim(0); }
  // Layer l's keys / values, (heads, capacity, head_dim): the attention writes the new positions
  // length()..length()+T-1 into them, then the model calls advance(T) once every layer has.
  Tensor keys(int64_t layer) const;
  Tensor values(int64_t layer) const;
  void advance(int64_t positions);
  void clear() { length_ = 0; }  // forget every position (the window moved)
  size_t bytes() const { return keys_.nbytes() + values_.nbytes(); }

 private:
  Tensor layer_view(const Tensor& all, int64_t layer) const;

  Tensor keys_, values_;  // (L, H, capacity, hd)
  int64_t length_ = 0;
};

}  // namespace frugal
