#pragma once
// A model is a chain of blocks (the unit the executor schedules and checkpointing drops) plus a
// loss. Every model exposes its parameters under the names its files use.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tensor_init.h"
#include "nn/layer.h"
#include "nn/linear.h"
#include "nn/lm_head.h"

namespace frugal {

enum class LossKind { CrossEntropy, MeanSquaredError };

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string arch() const = 0;             // "gpt", "mlp", "cnn", "linear"
  virtual nlohmann::json config() const = 0;        // what config.json holds
  virtual LossKind loss_kind() const = 0;
  // Shape of one sample's input and target (without the batch dimension) and their dtypes.
  virtual Shape sample_input_shape() const = 0;
  virtual DType input_dtype() const = 0;
  virtual Shape sample_target_shape() const = 0;
  virtual DType target_dtype() const = 0;
  // Fresh weights from a counter-based stream keyed by seed (no-op in measure mode). Writes every
  // tensor of state(), buffers included, so no constructor value is needed: a model may be built
  // with shapes only and its tensors born in their storage type (models/param_storage.h).
  virtual void init_weights(uint64_t seed) = 0;
  // The values init_weights gives parameter `index` (of params()), written into `into` (fp32, its
  // shape): --base-precision nf4|int8 draws one weight at a time and quantises it.
  virtual void init_param(size_t index, const Tensor& into, uint64_t seed) const;

  const std::vector<std::unique_ptr<Layer>>& blocks() const { return blocks_; }
  // Parameters the optimizer may update (trainable or frozen), in file order.
  std::vector<Param*> params() const;
  // Everything a model file holds: params plus buffers (BatchNorm running statistics).
  std::vector<Param*> state() const;
  // The tensor of state() named `name` (e.g. "layers.0.bn.running_mean"); Error when there is none.
  Param& find_state(const std::string& name) const;
  int64_t parameter_count() const;
  int64_t trainable_parameter_count() const;
  // Whether it holds BatchNorm running statistics (its only buffers): what --bn-stats acts on.
  bool has_batchnorm() const { return state().size() > params().size(); }
  // --bn-stats batch: applies the running-statistics update merged over the step's micro-batches.
  virtual void apply_deferred_statistics() {}
  // Linear layers LoRA may adapt, by module name ("h.0.attn.c_attn", "layers.2"), and the prefix
  // PEFT puts before those names in adapter keys.
  virtual std::vector<std::pair<std::string, Linear*>> adaptable_linears() const = 0;
  virtual std::string peft_key_prefix() const { return "base_model.model."; }
  // A model whose output layer is fused with its loss (GPT: the tied LM head and cross-entropy,
  // nn/lm_head.h) ends its chain before that layer; the executor computes the loss and the chain
  // output's gradient through this head, forward_only turns the chain output into logits with it.
  virtual TiedLmHead* lm_head() { return nullptr; }
  // The kernels that decide the model's big scratch and activations, for `plan` and the summary:
  // {"lm_head": {...}, "attention": {...}} for GPT; empty elsewhere.
  virtual nlohmann::json kernels(int64_t micro_batch) const { (void)micro_batch; return nlohmann::json::object(); }

 protected:
  // Parameters of no block, listed after the blocks' (an untied LM head's weight).
  virtual void collect_head_params(std::vector<Param*>& out) const { (void)out; }
  // Buffers that are saved but never optimized; models with BatchNorm override.
  virtual void collect_buffers(std::vector<Param*>& out) const { (void)out; }
  std::vector<std::unique_ptr<Layer>> blocks_;
};

}  // namespace frugal
