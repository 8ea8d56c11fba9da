#include "models/cnn.h"

#include "core/error.h"
#include "models/config_json.h"
#include "models/mlp.h"
#include "models/normalization.h"
#include "nn/activations.h"
#include "nn/conv2d.h"
#include "nn/linear.h"
#include "nn/pool2d.h"
#include "nn/sequential.h"

namespace frugal {

nlohmann::json CnnConfig::to_json() const {
  return {{"frugal_arch", "cnn"}, {"channels", channels}, {"n_blocks", n_blocks}, {"classes", classes}, {"norm", norm}};
}

CnnConfig CnnConfig::from_json(const nlohmann::json& j) {
  CnnConfig c;
  c.channels = require_int(j, "channels");
  c.n_blocks = require_int(j, "n_blocks");
  c.classes = require_int(j, "classes");
  c.norm = j.value("norm", std::string("batch"));
  c.validate();
  return c;
}

void CnnConfig::validate() const {
  check(channels > 0 && channels <= 4096, "CNN config: channels must be in 1..4096");
  check(n_blocks >= 1 && n_blocks <= 3, "CNN config: n_blocks must be 1, 2 or 3 for 28x28 images");
  check(classes >= 2, "CNN config: at least 2 classes");
  validate_norm(norm);
}

Cnn::Cnn(const CnnConfig& config) : config_(config) {
  config_.validate();
  int64_t in = 1, side = 28, channels = config.channels;
  for (int64_t i = 0; i < config.n_blocks; ++i) {
    const std::string prefix = "blocks." + std::to_string(i);
    auto block = std::make_unique<Sequential>("conv_block");
    block->add(std::make_unique<Conv2d>(prefix + ".conv", in, channels, 3, 1, 1));
    if (auto norm = make_norm_layer(config.norm, prefix, channels, /*images=*/true, batchnorms_))
      block->add(std::move(norm));
    block->add(std::make_unique<ReLU>());
    block->add(std::make_unique<MaxPool2d>(2));
    blocks_.push_back(std::move(block));
    in = channels;
    channels *= 2;
    side /= 2;
  }
  auto head = std::make_unique<Sequential>("classifier_head");
  head->add(std::make_unique<Flatten>());
  head->add(std::make_unique<Linear>("head", in * side * side, config.classes, WeightLayout::OutIn, true));
  blocks_.push_back(std::move(head));
}

void Cnn::init_weights(uint64_t seed) {
  for (size_t i = 0; i + 1 < blocks_.size(); ++i) {
    auto& block = static_cast<Sequential&>(*blocks_[i]);
    static_cast<Conv2d&>(*block.layers()[0]).reset_parameters(seed + i);
  }
  std::vector<Param*> head;
  blocks_.back()->collect_params(head);
  init_linear_default(head, seed);
  init_norm_state(state());
}

std::vector<std::pair<std::string, Linear*>> Cnn::adaptable_linears() const {
  auto& head = static_cast<Sequential&>(*blocks_.back());
  return {{"head", static_cast<Linear*>(head.layers()[1].get())}};
}

void Cnn::apply_deferred_statistics() {
  for (BatchNorm* bn : batchnorms_) bn->apply_deferred_statistics();
}

void Cnn::collect_buffers(std::vector<Param*>& out) const {
  for (BatchNorm* bn : batchnorms_) bn->collect_buffers(out);
}

}  // namespace frugal
