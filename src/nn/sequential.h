#pragma once
// A block made of layers applied one after another (MLP/CNN blocks, GPT's final LayerNorm + head).
#include <memory>
#include <vector>

#include "nn/layer.h"

namespace frugal {

class Sequential : public Layer {
 public:
  explicit Sequential(std::string kind = "sequential") : kind_(std::move(kind)) {}
  Layer& add(std::unique_ptr<Layer> layer);
  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  void collect_params(std::vector<Param*>& out) override;
  std::string kind() const override { return kind_; }
  // A composite takes half inputs as they are: it calls each child through forward_child and
  // backward_child, which widen for the children that compute in fp32 (nn/half_storage.h).
  bool computes_in(DType half) const override { return true; }
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }

 private:
  std::string kind_;
  std::vector<std::unique_ptr<Layer>> layers_;
};

}  // namespace frugal
