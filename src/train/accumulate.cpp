#include "train/accumulate.h"

#include "core/error.h"
#include "train/executor.h"

namespace frugal {

AccumulatedPass accumulate_gradients(Model& model, const Batch& batch, int64_t accum, RunContext rc,
                                     const Schedule* schedule) {
  check(accum >= 1 && batch.size() % accum == 0,
        "--accum " + std::to_string(accum) + " does not split the batch of " + std::to_string(batch.size()) +
            " samples into equal micro-batches");
  AccumulatedPass result;
  result.items = count_items(model, batch);
  const double normalizer = static_cast<double>(result.items);
  const int64_t micro = batch.size() / accum;
  for (int64_t k = 0; k < accum; ++k) {
    rc.micro_batch = static_cast<uint64_t>(k);
    rc.sample_offset = static_cast<uint64_t>(k * micro);
    const PassResult pass = forward_backward(model, batch.slice(k * micro, (k + 1) * micro), normalizer, rc, schedule);
    result.loss += pass.loss;
    result.forward_calls += pass.forward_calls;
  }
  return result;
}

}  // namespace frugal
