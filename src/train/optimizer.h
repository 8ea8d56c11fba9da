#pragma once
// Optimizers over trainable parameters. State lives in MemCategory::Optimizer and is created on
// the first step (as in PyTorch), so a measuring ledger sees it too.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.h"
#include "nn/layer.h"

namespace frugal {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update with learning rate lr from the gradients in params (only trainable ones with a
  // gradient are touched): begin_step, then update_param for each of them.
  void step(const std::vector<Param*>& params, float lr);
  // The same in parts, so --fused-update can update a block's parameters as soon as their gradients
  // are final: begin_step once per optimizer step (state created on the first call, the step count
  // advanced), then update_param for each parameter k of `params` (the same list every time), in
  // any order, before the next begin_step.
  virtual void begin_step(const std::vector<Param*>& params) = 0;
  virtual void update_param(const std::vector<Param*>& params, size_t k, float lr) = 0;
  virtual std::string name() const = 0;

  // Training-state checkpoints: the state tensors (created now if no step ran yet), named
  // "<optimizer>.<what>/<parameter name>", and the scalar state (AdamW's step count).
  virtual std::vector<std::pair<std::string, Tensor>> state_tensors(const std::vector<Param*>& params) = 0;
  virtual int64_t steps_taken() const { return 0; }
  virtual void set_steps_taken(int64_t) {}
};

struct AdamWOptions {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  // Adam's bias corrections 1 - beta1^t and 1 - beta2^t at step t (1-based).
  std::pair<float, float> bias_corrections(int64_t t) const;
};

// Adam with decoupled weight decay (Loshchilov & Hutter): p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p).
// Weight decay applies to 2-D tensors only (matrices and embeddings), not to biases or LayerNorm
// gains, as nanoGPT does.
class AdamW : public Optimizer {
 public:
  explicit AdamW(AdamWOptions options) : options_(options) {}
  void begin_step(const std::vector<Param*>& params) override;
  void update_param(const std::vector<Param*>& params, size_t k, float lr) override;
  std::string name() const override { return "adamw"; }
  std::vector<std::pair<std::string, Tensor>> state_tensors(const std::vector<Param*>& params) override;
  int64_t steps_taken() const override { return t_; }
  void set_steps_taken(int64_t t) override { t_ = t; }

 private:
  void ensure_state(const std::vector<Param*>& params);
  AdamWOptions options_;
  int64_t t_ = 0;
  float bias1_ = 1.0f, bias2_ = 1.0f;  // 1 - beta^t of the current step
  std::vector<Tensor> m_, v_;  // per parameter, (same shape)
};

// SGD with momentum (PyTorch's rule): g += wd * p; buf = mu * buf + g; p -= lr * buf.
class Sgd : public Optimizer {
 public:
  Sgd(float momentum, float weight_decay) : momentum_(momentum), weight_decay_(weight_decay) {}
  void begin_step(const std::vector<Param*>& params) override;
  void update_param(const std::vector<Param*>& params, size_t k, float lr) override;
  std::string name() const override { return "sgd"; }
  std::vector<std::pair<std::string, Tensor>> state_tensors(const std::vector<Param*>& params) override;

 private:
  void ensure_state(const std::vector<Param*>& params);
  float momentum_, weight_decay_;
  std::vector<Tensor> buf_;
};

// `block`: adamw8bit's quantisation block (numbers per fp32 absmax).
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, float weight_decay, int64_t block = 256);

// Scales all gradients so their global L2 norm is at most max_norm (max_norm <= 0: no clipping).
// Returns the norm before clipping. `across` (ZeRO-2): the gradients are spread over its ranks, and
// the norm is that of all of them together.
double clip_grad_norm(const std::vector<Param*>& params, double max_norm, Communicator* across = nullptr);

void zero_grads(const std::vector<Param*>& params);

// Learning rate at `step` (0-based): linear warmup, then cosine decay to 10% of lr, or constant.
float scheduled_lr(float lr, int64_t step, int64_t total_steps, int64_t warmup, const std::string& schedule);

}  // namespace frugal
