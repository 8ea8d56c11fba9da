#include "nn/sequential.h"

#include "nn/half_storage.h"

namespace frugal {

Layer& Sequential::add(std::unique_ptr<Layer> layer) {
  layers_.push_back(std::move(layer));
  return *layers_.back();
}

Tensor Sequential::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  saved.children.resize(layers_.size());
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) h = forward_child(*layers_[i], h, saved.children[i], rc);
  return h;
}

Tensor Sequential::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  Tensor g = dy;
  RunContext inner = rc;
  for (size_t i = layers_.size(); i-- > 0;) {
    inner.input_grad = i > 0 || rc.input_grad;  // only the first layer's input can be data
    g = backward_child(*layers_[i], g, saved.children[i], inner);
    saved.children[i].clear();  // this layer's activations are no longer needed
  }
  return g;
}

void Sequential::collect_params(std::vector<Param*>& out) {
  for (auto& layer : layers_) layer->collect_params(out);
}

}  // namespace frugal
