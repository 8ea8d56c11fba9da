#include "train/executor.h"

#include "core/error.h"
#include "kernels/elementwise.h"
#include "nn/half_storage.h"
#include "train/loss.h"

namespace frugal {

namespace {

// ZeRO-3: block i's weights from their ranks for as long as this lives (nothing without sharding).
class WeightsHeld {
 public:
  WeightsHeld(BlockWeights* weights, int block) : weights_(weights), block_(block) {
    if (weights_) weights_->fetch(block_);
  }
  ~WeightsHeld() {
    if (weights_) weights_->drop(block_);
  }
  WeightsHeld(const WeightsHeld&) = delete;
  WeightsHeld& operator=(const WeightsHeld&) = delete;

 private:
  BlockWeights* weights_;
  int block_;
};

// One pass over the chain: the stored block inputs, what each block saved, the gradient flowing
// back, and checks that the schedule's operations come in an order that can run.
class Pass {
 public:
  Pass(Model& model, const Batch& batch, double normalizer, const RunContext& run)
      : model_(model), blocks_(model.blocks()), n_(static_cast<int>(blocks_.size())), batch_(batch),
        normalizer_(normalizer), rc_(pass_context(run)), ledger_(MemoryLedger::current()), inputs_(n_ + 1), saved_(n_),
        has_saved_(n_, false), forwarded_(n_, false), backwarded_(n_, false) {
    inputs_[0] = batch.inputs;
    if (batch.positions.defined()) rc_.positions = &batch_.positions;
  }

  void run(const ScheduleOp& op) {
    const int i = op.block;
    check(i >= 0 && i < n_ + (op.kind == ScheduleOp::Kind::Drop ? 1 : 0), "schedule: block index out of range");
    rc_.block_index = i;
    switch (op.kind) {
      case ScheduleOp::Kind::Forward: forward(i, op.save); break;
      case ScheduleOp::Kind::Drop: inputs_[i] = Tensor(); break;
      case ScheduleOp::Kind::Loss: loss(i); break;
      case ScheduleOp::Kind::Backward: backward(i); break;
    }
  }

  PassResult finish() {
    for (int i = 0; i < n_; ++i) check(backwarded_[i], "schedule: block " + std::to_string(i) + " never ran backward");
    ledger_.set_phase("");
    return result_;
  }

 private:
  void forward(int i, bool save) {
    check(inputs_[i].defined(), "schedule: block " + std::to_string(i) + "'s input is not stored");
    check(!backwarded_[i], "schedule: block " + std::to_string(i) + " runs forward after its backward");
    ledger_.set_phase((forwarded_[i] ? "recompute " : "forward ") + std::to_string(i));
    rc_.recompute = forwarded_[i];
    Saved scratch;
    const WeightsHeld held(rc_.block_weights, i);
    // Under mixed precision block outputs are half tensors (shared with what the blocks saved);
    // forward_child widens the input for the block's kernels.
    inputs_[i + 1] = forward_child(*blocks_[i], inputs_[i], save ? saved_[i] : scratch, rc_);
    has_saved_[i] = has_saved_[i] || save;
    forwarded_[i] = true;
    ++result_.forward_calls;
  }

  void loss(int i) {
    check(i == n_ - 1 && inputs_[n_].defined() && !loss_done_, "schedule: the loss needs the last block's output");
    ledger_.set_phase("loss");
    if (TiedLmHead* head = model_.lm_head()) {  // head and loss fused: scaled by loss_scale inside
      const WeightsHeld held(rc_.block_weights, -1);
      result_.loss = head->loss_forward_backward(inputs_[n_], batch_.targets, normalizer_, rc_, grad_);
    } else {
      result_.loss = loss_forward_backward(model_.loss_kind(), widen_activation(inputs_[n_], rc_), batch_.targets,
                                           normalizer_, grad_);
      if (rc_.loss_scale != 1.0f && grad_.has_data()) scale_inplace(grad_.f32(), rc_.loss_scale, grad_.numel());
    }
    round_activation_in_place(grad_, rc_);
    inputs_[n_] = Tensor();  // the chain's output is not needed once its gradient exists
    loss_done_ = true;
  }

  void backward(int i) {
    check(loss_done_ && has_saved_[i] && !backwarded_[i] && (i == n_ - 1 || backwarded_[i + 1]),
          "schedule: block " + std::to_string(i) + "'s backward is out of order or lacks its saved tensors");
    ledger_.set_phase("backward " + std::to_string(i));
    rc_.recompute = false;
    rc_.input_grad = i > 0;  // the chain's input is data: no gradient for it
    {
      const WeightsHeld held(rc_.block_weights, i);
      grad_ = backward_child(*blocks_[i], grad_, saved_[i], rc_);
    }
    saved_[i].clear();
    has_saved_[i] = false;
    backwarded_[i] = true;
    if (rc_.after_backward) (*rc_.after_backward)(i);
  }

  Model& model_;
  const std::vector<std::unique_ptr<Layer>>& blocks_;
  const int n_;
  const Batch& batch_;
  const double normalizer_;
  RunContext rc_;
  MemoryLedger& ledger_;
  std::vector<Tensor> inputs_;  // inputs_[i]: block i's stored input; inputs_[n]: the chain's output
  std::vector<Saved> saved_;
  std::vector<bool> has_saved_, forwarded_, backwarded_;
  Tensor grad_;  // gradient of the loss with respect to the output of the next block to run backward
  bool loss_done_ = false;
  PassResult result_;
};

}  // namespace

PassResult forward_backward(Model& model, const Batch& batch, double normalizer, const RunContext& run,
                            const Schedule* schedule) {
  const int n = static_cast<int>(model.blocks().size());
  Schedule store_all;
  if (!schedule) {
    store_all = store_all_schedule(n);
    schedule = &store_all;
  }
  check(schedule->blocks == n, "schedule for " + std::to_string(schedule->blocks) + " blocks run on a chain of " +
                                   std::to_string(n));
  Pass pass(model, batch, normalizer, run);
  for (const ScheduleOp& op : schedule->ops) pass.run(op);
  return pass.finish();
}

Tensor forward_only(Model& model, const Tensor& inputs, const RunContext& rc) {
  Tensor h = inputs;
  for (const auto& block : model.blocks()) {
    Saved discard;
    h = forward_child(*block, h, discard, rc);
  }
  if (TiedLmHead* head = model.lm_head()) return head->logits(h);
  return widen_activation(h, rc);
}

double loss_only(Model& model, const Batch& batch, double normalizer, const RunContext& run) {
  RunContext rc = run;
  if (batch.positions.defined()) rc.positions = &batch.positions;
  TiedLmHead* head = model.lm_head();
  if (!head) {
    Tensor discarded_grad;
    return loss_forward_backward(model.loss_kind(), forward_only(model, batch.inputs, rc), batch.targets, normalizer,
                                 discarded_grad);
  }
  Tensor h = batch.inputs;
  for (const auto& block : model.blocks()) {
    Saved discard;
    h = forward_child(*block, h, discard, rc);
  }
  return head->loss(h, batch.targets, normalizer, rc);
}

}  // namespace frugal
