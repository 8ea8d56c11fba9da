#pragma once
// One optimizer step = the batch of that step, split into `accum` micro-batches that run one after
// another through the executor, each loss normalised by the counted items of the whole batch;
// then gradient clipping, the scheduled learning rate, the optimizer update, zeroed gradients.
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "models/model.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/precision.h"
#include "train/schedule.h"

namespace frugal {

class SafetensorsFile;
class ShardedWeights;

struct TrainOptions {
  int64_t steps = 100;
  int64_t micro_batch = 8;
  int64_t accum = 1;
  std::string optimizer = "adamw";
  int64_t optimizer_block = 256;  // adamw8bit: numbers per quantisation block (train/adamw8bit.h kAdamW8bitBlock)
  float lr = 1e-3f;
  float weight_decay = 0.0f;
  double clip_grad_norm = 1.0;  // <= 0: off
  int64_t warmup = 0;
  std::string schedule = "cosine";  // or "constant"
  uint64_t seed = 0;
  // BatchNorm running statistics under accumulation: "micro" updates them after every micro-batch
  // (PyTorch's behaviour), "batch" merges the micro-batches and updates once per optimizer step.
  std::string bn_stats = "micro";
  std::string checkpoint = "store-all";  // store-all | memory-poor | sqrt | optimal
  int64_t activation_budget = 0;         // bytes, for optimal
  // Mixed precision: storage type of activations and of the weights' compute copy.
  DType precision = DType::F32;
  bool master_weights = true;  // fp16/bf16: fp32 masters updated by the optimizer
  LossScaleOptions loss_scale;
  // Data parallelism (mpirun): micro_batch and accum are per rank; the optimizer batch is
  // micro_batch x accum x ranks. zero = 1 shards optimizer state and FP32 masters across ranks;
  // zero = 2 the gradients too (reduced to their owner as each block's backward ends); zero = 3 the
  // weights too (each block's fetched from their owners before it runs, train/sharded_weights.h).
  int zero = 0;
  // Each block's parameters updated during the backward pass as soon as their gradients are final,
  // and those gradients freed at once (gradient memory: about one block's). Needs every gradient
  // of a step in one pass: no accumulation, no global-norm clipping, no loss scaling, one process.
  bool fused_update = false;
  // What a sample is: a window of the context's tokens, or chat examples (train/chat_data.h) packed
  // into rows of the context or one per sample at its own length (ragged). The planner measures the
  // batches these shapes give (the longest ragged one: every example as long as the context).
  enum class SampleRows { Windows, PackedExamples, RaggedExamples };
  SampleRows sample_rows = SampleRows::Windows;

  int64_t batch_size() const { return micro_batch * accum; }
  void validate() const;
  // The context every pass of this run gets (training, seed, step, precision, running-statistics
  // mode): the trainer's steps, `frugal grad` and the optimal planner's block costs all use it.
  RunContext run_context(int64_t step) const;
};

struct StepRecord {
  int64_t step = 0;           // 0-based
  double loss = 0.0;          // mean over the batch's counted items
  double grad_norm = 0.0;     // before clipping
  float lr = 0.0f;
  double seconds = 0.0;
  int64_t items = 0;          // counted items (tokens or samples)
  int64_t forward_calls = 0;  // block forward evaluations, recomputation included
  float loss_scale = 1.0f;    // the scale this step's loss gradient was multiplied by
  bool skipped = false;       // gradients overflowed: no update
  double lost_update_fraction = 0.0;  // without master weights: non-zero updates erased by rounding
  double communication_s = 0.0;  // data parallelism: gradient allreduce/reduces, ZeRO-3's fetches (waiting included)
};

class Trainer {
 public:
  // `comm`: the job's ranks (default world()); the planner passes one of a planned job's ranks.
  Trainer(Model& model, DataSource& data, const TrainOptions& options, Communicator* comm = nullptr);
  ~Trainer();
  StepRecord step(int64_t step_index);
  const Schedule& schedule() const { return schedule_; }
  int64_t skipped_steps() const { return scaler_.skipped_steps(); }
  float loss_scale() const { return scaler_.scale(); }
  // After mixed-precision training: the parameters hold fp32 values again (from the masters).
  void finish();
  // After finish(), ZeRO-3: every parameter on rank `root` (for evaluation or saving there); the
  // other ranks keep their own. Every rank calls it. Nothing to do without ZeRO-3.
  void gather_model(int root);

  // Training-state checkpoints (train/checkpoint.h): every parameter ("param/<name>", in its
  // stored dtype), the FP32 masters, the optimizer's state; and the scalars (optimizer step count,
  // loss scaler). restore_state() puts them back, so the next step() continues bit for bit.
  // Under --zero on several ranks only this rank's share: sharded_state().
  std::vector<std::pair<std::string, Tensor>> state_tensors();
  bool sharded_state() const { return !owners_.empty(); }
  nlohmann::json state_json() const;
  void restore_state(const SafetensorsFile& file, const nlohmann::json& state);

 private:
  // Re-runs the step with a NonFiniteProbe and throws an Error naming the first non-finite layer.
  [[noreturn]] void diagnose_non_finite(const std::string& what, const Batch& batch, RunContext rc);
  // --fused-update: the step with updates inside the backward pass, and the update of the
  // parameters whose gradients became final with `block`'s backward (-1: those of no block).
  StepRecord fused_step(int64_t step_index);
  void update_block(int block, float lr, double& squared_norm);
  // ZeRO-2/3: each rank holds only the gradients of the parameters it owns.
  bool sharded_gradients() const { return options_.zero >= 2 && !owners_.empty(); }
  // ZeRO-3's conditions: several ranks, every parameter trainable.
  void check_zero3() const;
  // The ranks whose gradients together make the step's (clipping norm, overflow check): all of them
  // under ZeRO-2, none to ask otherwise (every rank holds every gradient).
  Communicator* across() const { return sharded_gradients() ? &comm_ : nullptr; }
  // ZeRO-2: sums the gradients that `block`'s backward made final (-1: those of no block) into their
  // owners' buffers and frees them on the other ranks. Returns the seconds it took.
  double reduce_to_owners(int block);

  Model& model_;
  DataSource& data_;
  TrainOptions options_;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<Param*> params_;
  Schedule schedule_;  // of one micro-batch
  std::unique_ptr<MasterWeights> masters_;  // fp16/bf16 only
  LossScaler scaler_;
  Communicator& comm_;
  std::vector<int> owners_;       // ZeRO-1: the rank that updates each parameter (empty: all ranks)
  std::vector<Param> zero_views_;  // ZeRO-1 in fp32: params_ with the others' marked not trainable
  std::unique_ptr<ShardedWeights> sharded_weights_;  // ZeRO-3
  // --fused-update: the parameters (indices into params_) each block's backward makes final (the
  // first block in chain order that uses one: the tied embedding waits for the embedding's
  // backward), and last those of no block.
  std::vector<std::vector<size_t>> final_after_block_;
};

}  // namespace frugal
