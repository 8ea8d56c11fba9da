#pragma once
// Batch normalisation over channel dimension 1 of [N, C] (BatchNorm1d), [N, C, L] or
// [N, C, H, W] (BatchNorm2d); statistics run over every dimension but C.
//
// Training (rc.training): normalise with the batch mean and biased variance, then update the
// running statistics with PyTorch's rule, which uses the UNBIASED variance:
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1),  M = N * H * W
// except during a checkpointing recomputation (rc.recompute), which must not count a batch twice.
// With rc.defer_running_stats (gradient accumulation with --bn-stats batch) the micro-batch's
// count, mean and sum of squared deviations are merged into per-channel accumulators instead
// (Chan, Golub & LeVeque's parallel merge, not an average of variances), and
// apply_deferred_statistics() makes the single update of the optimizer step: the same running
// statistics as one forward over the whole batch, for a layer whose input does not depend on
// other batch statistics.
// Eval: normalise with the running statistics. backward() must get the forward's rc.training.
//
// Saved for backward: the input x itself (no copy) plus mean and rstd = 1/sqrt(var + eps), two
// f32 [C] tensors = 8*C new bytes (Activations). Keeping x instead of xhat costs no new
// activation memory (x is already allocated, and often kept by its producer's consumers
// anyway); backward rebuilds xhat = (x - mean) * rstd on the fly, which is cheap.
// Memory per forward: output N*C*S*4 bytes (Activations) + the 8*C saved bytes;
// backward: dx N*C*S*4 bytes (Workspace).
//
// Parameters: <prefix>.weight (gamma, ones) and <prefix>.bias (beta, zeros) [C]. Buffers,
// not seen by the optimizer: <prefix>.running_mean (zeros) and <prefix>.running_var (ones) [C],
// in MemCategory::Params, trainable = false. PyTorch's num_batches_tracked is not kept (it only
// matters for momentum=None).
#include <cstdint>
#include <string>
#include <vector>

#include "nn/layer.h"

namespace frugal {

class BatchNorm : public Layer {
 public:
  BatchNorm(std::string prefix, int64_t num_features, double eps = 1e-5, double momentum = 0.1);

  Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) override;
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;
  void collect_params(std::vector<Param*>& out) override;
  // The running statistics, for checkpoints (saved and loaded, never optimised).
  void collect_buffers(std::vector<Param*>& out);
  std::string kind() const override { return "batchnorm"; }

  Param& weight() { return weight_; }
  Param& bias() { return bias_; }
  Param& running_mean() { return running_mean_; }
  Param& running_var() { return running_var_; }
  void apply_deferred_statistics();

 private:
  void check_input(const Tensor& x, const std::string& what) const;

  std::string prefix_;
  int64_t channels_;
  double eps_, momentum_;
  Param weight_, bias_;                 // (C) gamma, beta
  Param running_mean_, running_var_;    // (C) buffers
  // Merged statistics of the step's micro-batches so far (a few doubles per channel, layer state
  // like the running statistics themselves).
  int64_t pending_count_ = 0;
  std::vector<double> pending_mean_, pending_m2_;  // (C)
};

}  // namespace frugal
