#pragma once
// GroupNorm over [N, C] or [N, C, H, W]: G groups of C/G channels, each sample normalised on its
// own (no batch statistics, so gradient accumulation is exact). G = 1 normalises over all of a
// sample's (C, H, W) values: LayerNorm for images, with per-channel gains.
// Parameters <prefix>.weight (ones) and <prefix>.bias (zeros), (C).
// Saves x (no copy) and mean, rstd (N, G): 8*N*G new bytes; output N*C*S*4 (Activations).
#include "nn/layer.h"

namespace frugal {

class GroupNorm : public Layer {
 public:
  GroupNorm(const std::string& prefix, int64_t groups, int64_t channels, float eps = 1e-5f);
  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  void collect_params(std::vector<Param*>& out) override;
  std::string kind() const override { return "groupnorm"; }

 private:
  int64_t groups_, channels_;
  float eps_;
  Param weight_, bias_;
};

}  // namespace frugal
