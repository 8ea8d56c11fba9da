#include "train/planner.h"

#include <algorithm>

namespace frugal {

namespace {
// Batches with the model's shapes and no data.
class ShapeOnlyData : public DataSource {
 public:
  explicit ShapeOnlyData(const Model& model) : model_(model) {}
  Batch batch(int64_t, int64_t batch_size) override { return allocate_batch(model_, batch_size); }
  std::string describe() const override { return "shapes only"; }

 private:
  const Model& model_;
};
}  // namespace

MemoryPlan plan_training_memory(const ModelFactory& make_model, const TrainOptions& options) {
  MemoryLedger ledger(/*measure_only=*/true);
  LedgerScope scope(ledger);
  std::unique_ptr<Model> model = make_model();
  ShapeOnlyData data(*model);
  Trainer trainer(*model, data, options);
  MemoryPlan plan;
  // Two steps (or one for a one-step run): the second runs with gradients and optimizer state
  // already allocated, which is where the total peaks in a real run.
  const int64_t steps = std::min<int64_t>(2, options.steps);
  for (int64_t s = 0; s < steps; ++s) plan.forward_calls = trainer.step(s).forward_calls;
  plan.layer_count = static_cast<int64_t>(model->blocks().size());
  plan.kernels = model->kernels(options.micro_batch);
  plan.peak = ledger.peak();
  return plan;
}

}  // namespace frugal
