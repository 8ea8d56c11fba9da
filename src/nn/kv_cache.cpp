#include "nn/kv_cache.h"

#include "core/error.h"

namespace frugal {

KvCache::KvCache(int64_t layers, int64_t heads, int64_t capacity, int64_t head_dim) {
  check(layers > 0 && heads > 0 && capacity > 0 && head_dim > 0,
        "kv cache: layers, heads, capacity and head_dim must be positive");
  keys_ = Tensor::zeros({layers, heads, capacity, head_dim}, DType::F32, MemCategory::Activations);
  values_ = Tensor::zeros({layers, heads, capacity, head_dim}, DType::F32, MemCategory::Activations);
}

Tensor KvCache::layer_view(const Tensor& all, int64_t layer) const {
  check(layer >= 0 && layer < layers(), "kv cache: layer " + std::to_string(layer) + " out of range");
  return all.slice_rows(layer, layer + 1).view({all.dim(1), capacity(), all.dim(3)});
}

Tensor KvCache::keys(int64_t layer) const { return layer_view(keys_, layer); }
Tensor KvCache::values(int64_t layer) const { return layer_view(values_, layer); }

void KvCache::advance(int64_t positions) {
  check(positions >= 0 && length_ + positions <= capacity(),
        "kv cache: " + std::to_string(length_ + positions) + " positions exceed its capacity " +
            std::to_string(capacity()));
  length_ += positions;
}

}  // namespace frugal
