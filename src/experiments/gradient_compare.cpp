#include "experiments/gradient_compare.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace frugal {

GradientSnapshot snapshot_gradients(const Model& model) {
  GradientSnapshot g;
  for (Param* p : model.params())
    if (p->grad.has_data()) g[p->name] = std::vector<double>(p->grad.f32(), p->grad.f32() + p->grad.numel());
  return g;
}

double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  check(a.size() == b.size(), "relative_difference: sizes differ");
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-300);
}

double max_relative_difference(const GradientSnapshot& a, const GradientSnapshot& b) {
  check(a.size() == b.size(), "gradient snapshots hold different parameters");
  double worst = 0;
  for (const auto& [name, ref] : b) {
    auto it = a.find(name);
    check(it != a.end(), "gradient snapshot lacks " + name);
    worst = std::max(worst, relative_difference(it->second, ref));
  }
  return worst;
}

}  // namespace frugal
