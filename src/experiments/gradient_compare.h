#pragma once
// Gradients captured by parameter name, and the relative differences the accumulation claims are
// stated in: per tensor, ||a - b|| / ||b||.
#include <map>
#include <string>
#include <vector>

#include "models/model.h"

namespace frugal {

using GradientSnapshot = std::map<std::string, std::vector<double>>;

// Copies every parameter gradient that exists (frozen parameters have none).
GradientSnapshot snapshot_gradients(const Model& model);

// Largest per-tensor relative difference of `a` against the reference `b` (same names required).
double max_relative_difference(const GradientSnapshot& a, const GradientSnapshot& b);

// ||a - b|| / ||b|| over two equally long vectors.
double relative_difference(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace frugal
