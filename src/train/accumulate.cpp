#include "train/accumulate.h"

#include "core/error.h"
#include "train/executor.h"

namespace frugal {

AccumulatedPass accumulate_gradients(Model& model, const Batch& batch, int64_t accum, RunContext rc,
                                     const Schedule* schedule, int64_t total_items) {
  check(accum >= 1 && batch.size() % accum == 0,
        "--accum " + std::to_string(accum) + " does not split the batch of " + std::to_string(batch.size()) +
            " samples into equal micro-batches");
  AccumulatedPass result;
  result.items = total_items > 0 ? total_items : count_items(model, batch);
  const double normalizer = static_cast<double>(result.items);
  const int64_t micro = batch.size() / accum;
  const uint64_t first_sample = rc.sample_offset;
  for (int64_t k = 0; k < accum; ++k) {
    rc.micro_batch = static_cast<uint64_t>(k);
    rc.sample_offset = first_sample + static_cast<uint64_t>(k * micro);
    const PassResult pass = forward_backward(model, batch.slice(k * micro, (k + 1) * micro), normalizer, rc, schedule);
    result.loss += pass.loss;
    result.forward_calls += pass.forward_calls;
  }
  return result;
}

}  // namespace frugal
