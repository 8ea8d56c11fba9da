#pragma once
// Tensors side by side along their last dimension, and back: the Llama block's separate q/k/v
// (and gate/up) projections feed kernels that take them as one row (nn/llama_block.h).
#include <vector>

#include "core/tensor.h"

namespace frugal {

// parts (..., w_i), one dtype and the same leading dimensions -> (..., sum w_i) in `category`.
Tensor concat_last(const std::vector<Tensor>& parts, MemCategory category);
// t (..., sum widths) -> copies (..., w_i) in `category`.
std::vector<Tensor> split_last(const Tensor& t, const std::vector<int64_t>& widths, MemCategory category);

}  // namespace frugal
