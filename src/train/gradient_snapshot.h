#pragma once
// Gradients captured by parameter name, and the relative differences the accumulation claims are
// stated in: per tensor, ||a - b|| / ||b||.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/model.h"
#include "train/batch.h"

namespace frugal {

using GradientSnapshot = std::map<std::string, std::vector<double>>;

// Copies every parameter gradient that exists (frozen parameters have none).
GradientSnapshot snapshot_gradients(const Model& model);

// Largest per-tensor relative difference of `a` against the reference `b` (same names required;
// Error when they hold none).
double max_relative_difference(const GradientSnapshot& a, const GradientSnapshot& b);

using ModelMaker = std::function<std::unique_ptr<Model>()>;

// Gradients of a fresh model (from `make`) after accumulating `batch` in `accum` micro-batches.
GradientSnapshot accumulated_gradients(const ModelMaker& make, const Batch& batch, int64_t accum);

// The normalisation frugal avoids, for comparison: each micro-batch averaged over its own counted
// items, then divided by the number of micro-batches. Counted items per micro-batch go to `counts`.
GradientSnapshot naively_normalised_gradients(const ModelMaker& make, const Batch& batch, int64_t accum,
                                              std::vector<int64_t>* counts = nullptr);

// ||a - b|| / ||b|| over two equally long vectors.
double relative_difference(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace frugal
