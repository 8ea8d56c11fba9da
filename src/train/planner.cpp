#include "train/planner.h"

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
  // Two steps: the second one runs with gradients and optimizer state already allocated, which is
  // where the total peaks in a real run.
  trainer.step(0);
  plan.forward_calls = trainer.step(1).forward_calls;
  plan.layer_count = static_cast<int64_t>(model->blocks().size());
  plan.peak = ledger.peak();
  return plan;
}

}  // namespace frugal
