#pragma once
// Fully connected layer over the last dimension: y = x W + b.
// Two weight layouts, so files from both worlds load without transposes:
//   InOut: W is (in, out) - HF GPT-2 Conv1D;  OutIn: W is (out, in) - torch.nn.Linear, tied LM heads.
#include <string>

#include "nn/layer.h"

namespace frugal {

enum class WeightLayout { InOut, OutIn };

class Linear : public Layer {
 public:
  // Owns its weight (prefix + ".weight") and, if `bias`, its bias (prefix + ".bias").
  Linear(const std::string& prefix, int64_t in, int64_t out, WeightLayout layout, bool bias);
  // Uses a weight owned elsewhere (GPT-2's LM head is wte); no bias.
  Linear(Param* shared_weight, int64_t in, int64_t out, WeightLayout layout);

  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;    // (..., in) -> (..., out)
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;  // saved: x
  void collect_params(std::vector<Param*>& out) override;
  std::string kind() const override { return "linear"; }

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  Param& weight() { return *weight_; }
  Param* bias() { return has_bias_ ? &bias_ : nullptr; }

 private:
  Tensor output_like(const Tensor& x, int64_t last, MemCategory category) const;

  int64_t in_, out_;
  WeightLayout layout_;
  Param own_weight_;
  Param* weight_;  // &own_weight_ or a shared parameter
  bool owns_weight_;
  Param bias_;
  bool has_bias_;
  std::string name_;
};

}  // namespace frugal
