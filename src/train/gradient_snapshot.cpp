#include "train/gradient_snapshot.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "train/accumulate.h"
#include "train/executor.h"

namespace frugal {

GradientSnapshot snapshot_gradients(const Model& model) {
  GradientSnapshot g;
  for (Param* p : model.params())
    if (p->grad.has_data()) g[p->name] = std::vector<double>(p->grad.f32(), p->grad.f32() + p->grad.numel());
  return g;
}

GradientSnapshot accumulated_gradients(const ModelMaker& make, const Batch& batch, int64_t accum) {
  auto model = make();
  accumulate_gradients(*model, batch, accum, RunContext{});
  return snapshot_gradients(*model);
}

GradientSnapshot naively_normalised_gradients(const ModelMaker& make, const Batch& batch, int64_t accum,
                                              std::vector<int64_t>* counts) {
  auto model = make();
  const int64_t micro = batch.size() / accum;
  for (int64_t k = 0; k < accum; ++k) {
    const Batch mb = batch.slice(k * micro, (k + 1) * micro);
    const int64_t n = count_items(*model, mb);
    if (counts) counts->push_back(n);
    forward_backward(*model, mb, static_cast<double>(n * accum), RunContext{});
  }
  return snapshot_gradients(*model);
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
  // Two empty snapshots would compare as equal: a model that computed no gradient must not pass.
  check(!b.empty(), "gradient snapshots hold no gradients");
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
