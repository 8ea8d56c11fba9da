#include "train/planner.h"

#include <algorithm>

#include "core/error.h"
#include "models/causal_lm.h"
#include "nn/attention.h"
#include "train/chat_data.h"
#include "train/run_description.h"

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

MemoryPlan plan_training_memory(const ModelFactory& make_model, const TrainOptions& options, Communicator* rank) {
  MemoryLedger ledger(/*measure_only=*/true);
  LedgerScope scope(ledger);
  std::unique_ptr<Model> model = make_model();
  std::unique_ptr<DataSource> data = std::make_unique<ShapeOnlyData>(*model);
  if (options.sample_rows != TrainOptions::SampleRows::Windows) {
    CausalLm* lm = as_causal_lm(*model);
    check(lm != nullptr, "chat examples need a language model, not " + model->arch());
    // Examples in rows run the fused kernel (the only one that masks them): the plan reports it.
    if (lm->attention_kernel() == AttentionKernel::Auto) lm->set_attention_kernel(AttentionKernel::Flash);
    data = std::make_unique<ChatBatchShapes>(lm->context(),
                                             options.sample_rows == TrainOptions::SampleRows::PackedExamples);
  }
  Trainer trainer(*model, *data, options, rank);
  MemoryPlan plan;
  // Two steps (or one for a one-step run): the second runs with gradients and optimizer state
  // already allocated, which is where the total peaks in a real run.
  const int64_t steps = std::min<int64_t>(2, options.steps);
  for (int64_t s = 0; s + 1 < steps; ++s) trainer.step(s);
  {
    WorkMeterScope meter(plan.work.gemms);
    const size_t allocated_before = ledger.allocated_total();
    plan.forward_calls = trainer.step(steps - 1).forward_calls;
    plan.work.step_bytes = static_cast<double>(ledger.allocated_total() - allocated_before);
  }
  plan.layer_count = static_cast<int64_t>(model->blocks().size());
  plan.work.layer_calls = plan.forward_calls + plan.layer_count * options.accum;
  plan.work.updated_params = model->trainable_parameter_count();
  plan.work.optimizer = options.optimizer;
  plan.work.clipped = options.clip_grad_norm > 0;
  plan.work.master_bytes = static_cast<double>(ledger.peak()[MemCategory::MasterParams]);
  plan.kernels = model->kernels(options.micro_batch);
  plan.run = describe_run(*model, options);
  plan.peak = ledger.peak();
  plan.at_peak = ledger.at_peak();
  return plan;
}

}  // namespace frugal
