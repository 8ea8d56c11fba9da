#pragma once
// The normalisation layer a model's --norm asks for, between a linear/conv layer and its ReLU:
//   batch: BatchNorm (statistics of the micro-batch: breaks exact gradient accumulation)
//   group: GroupNorm with 4 groups;  layer: LayerNorm (MLP) / GroupNorm with 1 group (CNN)
//   none:  nothing (returns null)
// Names: <prefix>.bn.* for BatchNorm, <prefix>.norm.* for the others.
#include <memory>
#include <string>
#include <vector>

#include "nn/batchnorm.h"

namespace frugal {

constexpr int64_t kNormGroups = 4;

// Error for anything but none|batch|group|layer.
void validate_norm(const std::string& norm);

// Writes the starting values of every normalisation tensor in `state` (found by name): gains 1,
// shifts 0, running means 0, running variances 1. A model's init_weights calls it so that it writes
// every tensor, and a model built with shapes only (models/param_storage.h) needs no constructor value.
void init_norm_state(const std::vector<Param*>& state);

// BatchNorm layers are also appended to `batchnorms` (their running statistics are model state).
std::unique_ptr<Layer> make_norm_layer(const std::string& norm, const std::string& prefix, int64_t channels,
                                       bool images, std::vector<BatchNorm*>& batchnorms);

}  // namespace frugal
