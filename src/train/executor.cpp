#include "train/executor.h"

#include "train/loss.h"

namespace frugal {

PassResult forward_backward(Model& model, const Batch& batch, double normalizer, const RunContext& run) {
  MemoryLedger& ledger = MemoryLedger::current();
  const auto& blocks = model.blocks();
  std::vector<Saved> saved(blocks.size());
  PassResult result;
  RunContext rc = run;
  Tensor output;
  {
    Tensor h = batch.inputs;
    for (size_t i = 0; i < blocks.size(); ++i) {
      rc.block_index = static_cast<int>(i);
      ledger.set_phase("forward " + std::to_string(i));
      h = blocks[i]->forward(h, saved[i], rc);
      ++result.forward_calls;
    }
    output = h;
  }
  ledger.set_phase("loss");
  Tensor grad;
  result.loss = loss_forward_backward(model.loss_kind(), output, batch.targets, normalizer, grad);
  output = Tensor();  // the logits are not needed once their gradient exists
  for (size_t i = blocks.size(); i-- > 0;) {
    rc.block_index = static_cast<int>(i);
    rc.input_grad = i > 0;  // the chain's input is data: no gradient for it
    ledger.set_phase("backward " + std::to_string(i));
    grad = blocks[i]->backward(grad, saved[i], rc);
    saved[i].clear();
  }
  ledger.set_phase("");
  return result;
}

Tensor forward_only(Model& model, const Tensor& inputs, const RunContext& rc) {
  Tensor h = inputs;
  for (const auto& block : model.blocks()) {
    Saved discard;
    h = block->forward(h, discard, rc);
  }
  return h;
}

}  // namespace frugal
