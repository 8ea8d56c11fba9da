#pragma once
// Mixed precision training (DESIGN.md, numerics policy):
//   MasterWeights: the model's parameters become half-precision compute copies; each trainable one
//     keeps an fp32 master (MemCategory::MasterParams) that the optimizer updates, and the compute
//     copy is refreshed from it after every step. Without masters (the ablation) the update is
//     applied to an fp32 widening of the half weight and rounded back, and the updates that rounding
//     swallows are counted.
//   LossScaler: multiplies the loss gradient by a scale so small fp16 gradients do not underflow;
//     unscales the fp32 weight gradients before clipping, skips steps whose gradients overflowed.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/layer.h"
#include "train/optimizer.h"

namespace frugal {

// fp32 | fp16 | bf16 (the one parser of --precision and --base-precision); Error naming `flag`.
DType parse_precision(const std::string& name, const std::string& flag = "--precision");
std::string precision_name(DType dtype);

class MasterWeights {
 public:
  // Converts every value in `params` to `dtype` (F16 or BF16); with keep_master, each trainable
  // parameter first gets an fp32 master copy of its value. `owned` (ZeRO-1, parallel to params;
  // empty: all) limits masters, optimizer state and updates to this rank's parameters; the caller
  // then broadcasts the others' compute copies from their owners.
  MasterWeights(const std::vector<Param*>& params, DType dtype, bool keep_master, std::vector<bool> owned = {});

  // One optimizer update in fp32, then the compute copies are refreshed (rounded to the half type).
  void step(Optimizer& optimizer, float lr);
  // The same in parts (--fused-update): begin_step once, then update_param for parameter k (its
  // gradient final) at any time before the next begin_step.
  void begin_step(Optimizer& optimizer);
  void update_param(Optimizer& optimizer, size_t k, float lr);

  // Puts fp32 values back into the trainable parameters (the masters, or the widened half weights)
  // and drops the masters: for saving, evaluating and sampling after training. Frozen weights keep
  // their storage type, as under --base-precision.
  void restore_fp32();

  // Of the last step's non-zero fp32 updates, the fraction that rounding to the half weight erased
  // (the weight did not change). Always 0 with master weights: the master keeps every update.
  double lost_update_fraction() const { return lost_fraction_; }
  bool keeps_master() const { return keep_master_; }

  // Training-state checkpoints: the parameters the optimizer updates (its state is keyed by their
  // positions and names) and the FP32 masters, named "master/<parameter name>".
  std::vector<Param*> optimizer_params();
  std::vector<std::pair<std::string, Tensor>> master_tensors() const;

 private:
  std::vector<Param*> params_;
  bool keep_master_;
  std::vector<Param> masters_;  // parallel to params_: {name, fp32 value, grad shared with the param}
  std::vector<bool> owned_;     // parallel to params_
  double lost_fraction_ = 0.0;
  int64_t changed_ = 0, lost_ = 0;  // this step's counts so far
  std::vector<Param*> views_;       // the masters, as the optimizer's parameter list
};

struct LossScaleOptions {
  std::string mode = "auto";  // auto (dynamic for fp16, none otherwise) | dynamic | none | static
  double value = 65536.0;     // initial scale (dynamic) or the fixed scale (static)
  int64_t growth_interval = 2000;  // consecutive finite steps before the scale grows
  double growth = 2.0, backoff = 0.5;
  // From --loss-scale's text: "" (auto), dynamic, none, or a positive number (static).
  void set_mode(const std::string& flag_value);
  void validate() const;
};

class LossScaler {
 public:
  LossScaler(const LossScaleOptions& options, DType precision);
  float scale() const { return static_cast<float>(scale_); }
  bool active() const { return mode_ != "none"; }
  const std::string& mode() const { return mode_; }

  // Multiplies every gradient by 1 / scale and checks it. Returns false when any value is inf or
  // NaN: the caller skips the update; a dynamic scale is multiplied by `backoff`. After
  // growth_interval finite steps in a row a dynamic scale is multiplied by `growth`.
  // `across` (ZeRO-2, each rank holding some of the gradients): the ranks agree on the decision.
  bool unscale_and_check(const std::vector<Param*>& params, Communicator* across = nullptr);
  int64_t skipped_steps() const { return skipped_; }
  // Checkpoints: {scale, good_steps, skipped}.
  nlohmann::json state() const;
  void set_state(const nlohmann::json& state);

 private:
  std::string mode_;
  double scale_;
  LossScaleOptions options_;
  int64_t good_steps_ = 0, skipped_ = 0;
};

// True when every value of every gradient is finite (no scaling); with `across`, on every rank.
bool gradients_finite(const std::vector<Param*>& params, Communicator* across = nullptr);

}  // namespace frugal
