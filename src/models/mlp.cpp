#include "models/mlp.h"

#include <cmath>

#include "core/error.h"
#include "models/config_json.h"
#include "models/normalization.h"
#include "nn/activations.h"
#include "nn/linear.h"
#include "nn/sequential.h"

namespace frugal {

nlohmann::json MlpConfig::to_json() const {
  return {{"frugal_arch", "mlp"},  {"in_features", in_features}, {"hidden", hidden},
          {"out_features", out_features}, {"n_layers", n_layers}, {"norm", norm},
          {"task", classification ? "classification" : "regression"}};
}

MlpConfig MlpConfig::from_json(const nlohmann::json& j) {
  MlpConfig c;
  c.in_features = require_int(j, "in_features");
  c.hidden = require_int(j, "hidden");
  c.out_features = require_int(j, "out_features");
  c.n_layers = require_int(j, "n_layers");
  c.norm = j.value("norm", std::string("none"));
  const std::string task = j.value("task", std::string("regression"));
  check(task == "regression" || task == "classification",
        "config.json: task '" + task + "' is neither regression nor classification");
  c.classification = task == "classification";
  c.validate();
  return c;
}

void MlpConfig::validate() const {
  check(in_features > 0 && hidden > 0 && out_features > 0, "MLP config: feature sizes must be positive");
  check(n_layers >= 1 && n_layers <= 4096, "MLP config: n_layers must be in 1..4096");
  check(!classification || out_features >= 2, "MLP config: a classifier needs at least 2 classes");
  validate_norm(norm);
}

Mlp::Mlp(const MlpConfig& config) : config_(config) {
  config_.validate();
  int64_t in = config.in_features;
  for (int64_t i = 0; i + 1 < config.n_layers; ++i) {
    const std::string prefix = "layers." + std::to_string(i);
    auto block = std::make_unique<Sequential>("mlp_block");
    auto linear = std::make_unique<Linear>(prefix, in, config.hidden, WeightLayout::OutIn, true);
    linears_.push_back(linear.get());
    block->add(std::move(linear)).collect_params(linear_params_);
    if (auto norm = make_norm_layer(config.norm, prefix, config.hidden, /*images=*/false, batchnorms_))
      block->add(std::move(norm));
    block->add(std::make_unique<ReLU>());
    blocks_.push_back(std::move(block));
    in = config.hidden;
  }
  auto last = std::make_unique<Linear>("layers." + std::to_string(config.n_layers - 1), in, config.out_features,
                                       WeightLayout::OutIn, true);
  linears_.push_back(last.get());
  last->collect_params(linear_params_);
  blocks_.push_back(std::move(last));
}

void Mlp::init_weights(uint64_t seed) {
  init_linear_default(linear_params_, seed);
  init_norm_state(state());
}

std::vector<std::pair<std::string, Linear*>> Mlp::adaptable_linears() const {
  std::vector<std::pair<std::string, Linear*>> out;
  for (size_t i = 0; i < linears_.size(); ++i) out.emplace_back("layers." + std::to_string(i), linears_[i]);
  return out;
}

std::vector<std::pair<std::string, Linear*>> LinearRegression::adaptable_linears() const {
  return {{"linear", static_cast<Linear*>(blocks_[0].get())}};
}

void Mlp::apply_deferred_statistics() {
  for (BatchNorm* bn : batchnorms_) bn->apply_deferred_statistics();
}

void Mlp::collect_buffers(std::vector<Param*>& out) const {
  for (BatchNorm* bn : batchnorms_) bn->collect_buffers(out);
}

LinearRegression::LinearRegression(int64_t in_features, int64_t out_features) : in_(in_features), out_(out_features) {
  check(in_ > 0 && out_ > 0, "linear model: feature sizes must be positive");
  blocks_.push_back(std::make_unique<Linear>("linear", in_, out_, WeightLayout::OutIn, true));
}

nlohmann::json LinearRegression::config() const {
  return {{"frugal_arch", "linear"}, {"in_features", in_}, {"out_features", out_}};
}

void LinearRegression::init_weights(uint64_t seed) { init_linear_default(params(), seed); }

void init_linear_default(const std::vector<Param*>& params, uint64_t seed) {
  // Pairs of (weight (out, in), bias (out)): the bound comes from the weight's fan-in.
  float bound = 1.0f;
  uint64_t stream = 100;
  for (Param* p : params) {
    if (p->value.ndim() == 2) bound = 1.0f / std::sqrt(static_cast<float>(p->value.dim(1)));
    init_uniform(p->value, seed, ++stream, bound);
  }
}

}  // namespace frugal
