#include "train/executor.h"

#include "core/error.h"
#include "kernels/elementwise.h"
#include "nn/half_storage.h"
#include "train/loss.h"

namespace frugal {

PassResult forward_backward(Model& model, const Batch& batch, double normalizer, const RunContext& run,
                            const Schedule* schedule) {
  MemoryLedger& ledger = MemoryLedger::current();
  const auto& blocks = model.blocks();
  const int n = static_cast<int>(blocks.size());
  Schedule store_all;
  if (!schedule) {
    store_all = store_all_schedule(n);
    schedule = &store_all;
  }
  check(schedule->blocks == n, "schedule for " + std::to_string(schedule->blocks) + " blocks run on a chain of " +
                                   std::to_string(n));
  std::vector<Tensor> inputs(n + 1);  // inputs[i]: block i's stored input; inputs[n]: the chain's output
  std::vector<Saved> saved(n);
  std::vector<bool> has_saved(n, false), forwarded(n, false), backwarded(n, false);
  inputs[0] = batch.inputs;
  Tensor grad;  // gradient of the loss with respect to the output of the next block to run backward
  bool loss_done = false;
  PassResult result;
  RunContext rc = pass_context(run);
  for (const ScheduleOp& op : schedule->ops) {
    const int i = op.block;
    check(i >= 0 && i < n + (op.kind == ScheduleOp::Kind::Drop ? 1 : 0), "schedule: block index out of range");
    rc.block_index = i;
    switch (op.kind) {
      case ScheduleOp::Kind::Forward: {
        check(inputs[i].defined(), "schedule: block " + std::to_string(i) + "'s input is not stored");
        check(!backwarded[i], "schedule: block " + std::to_string(i) + " runs forward after its backward");
        ledger.set_phase((forwarded[i] ? "recompute " : "forward ") + std::to_string(i));
        rc.recompute = forwarded[i];
        Saved scratch;
        // Under mixed precision block outputs are half tensors (shared with what the blocks saved);
        // forward_child widens the input for the block's kernels.
        inputs[i + 1] = forward_child(*blocks[i], inputs[i], op.save ? saved[i] : scratch, rc);
        has_saved[i] = has_saved[i] || op.save;
        forwarded[i] = true;
        ++result.forward_calls;
        break;
      }
      case ScheduleOp::Kind::Drop:
        inputs[i] = Tensor();
        break;
      case ScheduleOp::Kind::Loss:
        check(i == n - 1 && inputs[n].defined() && !loss_done, "schedule: the loss needs the last block's output");
        ledger.set_phase("loss");
        result.loss = loss_forward_backward(model.loss_kind(), widen_activation(inputs[n], rc), batch.targets, normalizer, grad);
        if (rc.loss_scale != 1.0f && grad.has_data()) scale_inplace(grad.f32(), rc.loss_scale, grad.numel());
        round_activation_in_place(grad, rc);
        inputs[n] = Tensor();  // the logits are not needed once their gradient exists
        loss_done = true;
        break;
      case ScheduleOp::Kind::Backward:
        check(loss_done && has_saved[i] && !backwarded[i] && (i == n - 1 || backwarded[i + 1]),
              "schedule: block " + std::to_string(i) + "'s backward is out of order or lacks its saved tensors");
        ledger.set_phase("backward " + std::to_string(i));
        rc.recompute = false;
        rc.input_grad = i > 0;  // the chain's input is data: no gradient for it
        grad = backward_child(*blocks[i], grad, saved[i], rc);
        saved[i].clear();
        has_saved[i] = false;
        backwarded[i] = true;
        break;
    }
  }
  for (int i = 0; i < n; ++i) check(backwarded[i], "schedule: block " + std::to_string(i) + " never ran backward");
  ledger.set_phase("");
  return result;
}

Tensor forward_only(Model& model, const Tensor& inputs, const RunContext& rc) {
  Tensor h = inputs;
  for (const auto& block : model.blocks()) {
    Saved discard;
    h = forward_child(*block, h, discard, rc);
  }
  return widen_activation(h, rc);
}

}  // namespace frugal
