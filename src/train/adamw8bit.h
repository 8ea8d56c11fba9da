#pragma once
// AdamW with its two moments stored block-wise in 8 bits (Dettmers et al. 2022): per block of
// `block` numbers, one fp32 absmax per moment and one byte per number, the first moment in the
// signed dynamic code and the second in the unsigned one (kernels/quantize8.h). A step dequantises
// a block, updates m, v and the weights in fp32 exactly as AdamW does, and re-quantises m and v with
// the block's new absmax: about 2 bytes of state per parameter instead of 8.
#include "train/optimizer.h"

namespace frugal {

// 256: on the demo, blocks of 64, 256 and 2048 all ended within 0.5% of AdamW's loss (docs/BENCHMARKS.md,
// 8-bit AdamW); the smaller block keeps one outlier from coarsening the code for more neighbours, at
// 1.6% more state than 2048.
constexpr int64_t kAdamW8bitBlock = 256;

class AdamW8bit : public Optimizer {
 public:
  explicit AdamW8bit(AdamWOptions options, int64_t block = kAdamW8bitBlock) : options_(options), block_(block) {}
  void begin_step(const std::vector<Param*>& params) override;
  void update_param(const std::vector<Param*>& params, size_t k, float lr) override;
  std::string name() const override { return "adamw8bit"; }
  // "adamw8bit.m/<name>", "adamw8bit.v/<name>" (U8) and "adamw8bit.m_absmax/<name>",
  // "adamw8bit.v_absmax/<name>" (F32, one per block): restored as they are, so resuming is exact.
  std::vector<std::pair<std::string, Tensor>> state_tensors(const std::vector<Param*>& params) override;
  int64_t steps_taken() const override { return t_; }
  void set_steps_taken(int64_t t) override { t_ = t; }

 private:
  struct State {
    Tensor m, v;                // (numel) U8
    Tensor m_absmax, v_absmax;  // (blocks) F32
  };
  void ensure_state(const std::vector<Param*>& params);

  AdamWOptions options_;
  int64_t block_;
  int64_t t_ = 0;
  float bias1_ = 1.0f, bias2_ = 1.0f;  // 1 - beta^t of the current step
  std::vector<State> state_;  // per parameter; empty tensors for frozen ones
};

}  // namespace frugal
