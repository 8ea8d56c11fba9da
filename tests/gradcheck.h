#pragma once
// Finite-difference gradient checks for any Layer. The scalar checked is L = sum(w * y) for a
// fixed random w, so dL/dy = w is fed to backward(). Central differences are taken in float on a
// sample of coordinates of the input and of every parameter, and compared as a relative error
// (norm of the difference over the norm of the numerical gradient).
#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "nn/layer.h"
#include "train/gradient_snapshot.h"

namespace frugal::testing {

// A tensor of given shape filled with N(0, scale^2) drawn from `seed`.
inline Tensor random_tensor(const Shape& shape, uint64_t seed, float scale = 1.0f,
                            MemCategory category = MemCategory::Activations) {
  Tensor t = Tensor::empty(shape, DType::F32, category);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = scale * rng_normal(seed, 77, static_cast<uint64_t>(i));
  return t;
}

inline void randomize_params(Layer& layer, uint64_t seed, float scale = 0.5f) {
  std::vector<Param*> params;
  layer.collect_params(params);
  for (size_t k = 0; k < params.size(); ++k) {
    float* p = params[k]->value.f32();
    for (int64_t i = 0; i < params[k]->value.numel(); ++i)
      p[i] = scale * rng_normal(seed + k, 99, static_cast<uint64_t>(i));
  }
}

struct GradCheckEntry {
  std::string what;  // "input" or the parameter's name
  double rel_error;
};

inline double weighted_sum(const Tensor& y, const Tensor& w) {
  double s = 0;
  for (int64_t i = 0; i < y.numel(); ++i) s += static_cast<double>(y.f32()[i]) * w.f32()[i];
  return s;
}

// Checks dL/dx (when x is f32) and dL/dp for every parameter of `layer`, plus `shared` parameters
// the layer uses but does not own (a tied weight).
inline std::vector<GradCheckEntry> grad_check(Layer& layer, const Tensor& x, const RunContext& rc,
                                              float eps = 1e-2f, int max_coords = 48,
                                              const std::vector<Param*>& shared = {}) {
  std::vector<GradCheckEntry> out;
  Saved saved;
  Tensor y = layer.forward(x, saved, rc);
  Tensor w = random_tensor(y.shape(), 4242);
  std::vector<Param*> params;
  layer.collect_params(params);
  params.insert(params.end(), shared.begin(), shared.end());
  for (Param* p : params)
    if (p->grad.defined()) p->grad.fill_zero();
  Tensor dx = layer.backward(w, saved, rc);

  auto loss_at = [&]() {
    Saved s;
    return weighted_sum(layer.forward(x, s, rc), w);
  };
  auto check_tensor = [&](const std::string& what, const Tensor& value, const Tensor& grad) {
    std::vector<double> analytic, numeric;
    const int64_t n = value.numel();
    const int64_t stride = std::max<int64_t>(1, n / max_coords);
    for (int64_t i = 0; i < n; i += stride) {
      float* v = value.f32() + i;
      const float orig = *v;
      *v = orig + eps;
      const double plus = loss_at();
      *v = orig - eps;
      const double minus = loss_at();
      *v = orig;
      numeric.push_back((plus - minus) / (2.0 * eps));
      analytic.push_back(grad.f32()[i]);
    }
    out.push_back({what, relative_difference(analytic, numeric)});  // ||analytic - numeric|| / ||numeric||
  };
  if (x.dtype() == DType::F32) check_tensor("input", x, dx);
  for (Param* p : params)
    if (p->trainable) check_tensor(p->name, p->value, p->grad);
  return out;
}

}  // namespace frugal::testing
