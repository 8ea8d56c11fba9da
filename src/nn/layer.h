#pragma once
// The layer contract. forward() computes the output and saves into `saved` exactly what
// backward() needs; backward() accumulates (+=) parameter gradients and returns dL/dx.
// Dropping `saved` frees the layer's activations: that is all checkpointing needs.
//
// Memory categories: forward outputs and saved tensors are Activations; backward outputs
// (activation gradients) and kernel scratch are Workspace.
//
// Measure mode: when the input has no data (a measuring ledger, see core/ledger.h), a layer
// allocates exactly what it would allocate for real, then returns without running kernels.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace frugal {

struct HalfCache;

// Diagnosis of a non-finite loss or gradient (the trainer re-runs the step with this set): the
// first layer call whose output (forward) or input gradient (backward) holds an inf or NaN.
struct NonFiniteProbe {
  std::string first;  // e.g. "output of h.1.mlp.c_fc (linear) in block 2"; empty: none found
};

struct Param {
  std::string name;  // the file name of the tensor, e.g. "h.0.attn.c_attn.weight"
  Tensor value;      // MemCategory::Params
  Tensor grad;       // MemCategory::Grads; allocated (zeroed) on first use, never for frozen params
  bool trainable = true;

  // The gradient buffer, created zeroed on first call.
  const Tensor& ensure_grad();
};

// What a forward left for its backward; nested for composite layers.
struct Saved {
  // Under --precision fp16/bf16 these are stored in the half type (nn/half_storage.h) ...
  std::vector<Tensor> tensors;
  // ... and these stay fp32: small per-row or per-channel statistics (LayerNorm mean and 1/std).
  std::vector<Tensor> stats;
  std::vector<Shape> shapes;  // geometry a backward needs when no tensor carries it (pooling, flatten)
  std::vector<Saved> children;
  void clear() {
    tensors.clear();
    stats.clear();
    shapes.clear();
    children.clear();
  }
  Saved& child(size_t i) {
    if (children.size() <= i) children.resize(i + 1);
    return children[i];
  }
};

// ZeRO-3 (train/sharded_weights.h): each weight lives on one rank. The executor fetches the weights
// a block uses right before the block runs (its forward, each recomputation, its backward; block -1:
// the LM head, around the loss) and drops them right after.
class BlockWeights {
 public:
  virtual ~BlockWeights() = default;
  virtual void fetch(int block) = 0;
  virtual void drop(int block) noexcept = 0;  // (runs while errors unwind too)
};

struct RunContext {
  bool training = true;     // batch statistics and dropout on
  bool recompute = false;   // a checkpointing recomputation: no running-statistics updates
  uint64_t seed = 0;        // run seed (dropout streams)
  uint64_t step = 0;        // optimizer step
  uint64_t micro_batch = 0; // index within the optimizer step
  uint64_t sample_offset = 0;  // first sample of this micro-batch within the optimizer batch
  int block_index = 0;      // position in the chain (set by the executor)
  bool input_grad = true;   // false when the layer's input is data: backward may skip dL/dx
  // --bn-stats batch: BatchNorm merges the statistics of every micro-batch of the step and updates
  // its running statistics once, at Model::apply_deferred_statistics().
  bool defer_running_stats = false;
  // Mixed precision: the storage type of activations and activation gradients (F32, F16, BF16).
  // Layers compute in fp32; nn/half_storage.h rounds their outputs and stores what they save.
  DType precision = DType::F32;
  // One forward pass's map from fp32 activation buffers to their half copies, so a tensor saved by
  // two layers (one's output, the next one's input) is stored once. Created by the executor.
  std::shared_ptr<HalfCache> half_cache;
  // The loss gradient is multiplied by this (dynamic loss scaling); gradients are unscaled later.
  float loss_scale = 1.0f;
  // Set to look for the first non-finite layer output or gradient (see NonFiniteProbe).
  NonFiniteProbe* probe = nullptr;
  // Called by the executor right after block i's backward, when set (--fused-update: the block's
  // parameter gradients are final then, and it updates and frees them).
  const std::function<void(int block)>* after_backward = nullptr;
  BlockWeights* block_weights = nullptr;  // ZeRO-3: the weights other ranks hold
  // Token models: i32 (B, T), each token's position within its example (Batch::positions), for the
  // pass's embedding, rotary positions and attention; null: token t of every row at position t.
  const Tensor* positions = nullptr;
};

inline bool measuring(const Tensor& t) { return t.measured(); }

class Layer {
 public:
  Layer() = default;
  Layer(const Layer&) = delete;  // layers hold pointers to their own parameters
  Layer& operator=(const Layer&) = delete;
  virtual ~Layer() = default;
  virtual Tensor forward(const Tensor& x, Saved& saved, const RunContext& rc) = 0;
  // Returns dL/dx, or an undefined tensor when x takes no gradient (token ids, or
  // rc.input_grad == false).
  virtual Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) = 0;
  virtual void collect_params(std::vector<Param*>& out) { (void)out; }
  virtual std::string kind() const = 0;  // "linear", "layernorm", ... for messages and reports
  // Under --precision fp16/bf16: true when the layer takes its input, and its saved tensors in
  // backward, in the half type itself (it multiplies on the CPU's half-precision units); false when
  // forward_child/backward_child widen them to fp32 around its call (nn/half_storage.h).
  virtual bool computes_in(DType half) const { return false; }
};

}  // namespace frugal
