// One forward + backward of a spec's model on a batch, no update: `frugal grad`, frugal::grad() and
// Python's frugal.grad().
#include "run/grad_run.h"

#include <cmath>

#include "core/error.h"
#include "core/threading.h"
#include "models/causal_lm.h"
#include "run/model_builder.h"
#include "train/accumulate.h"
#include "train/data_parallel.h"

namespace frugal {

void grad_run(RunSpec& f, const BatchLoader& load_batch, const GradientConsumer& consume) {
  resolve_spec(f, Command::Grad);
  apply_threads(f.threads);
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  const bool examples = is_chat_data(f.data, f.chat);
  std::unique_ptr<Model> model = build_model(f.model, examples ? f.data : "", 0, /*with_weights=*/true, f.lora);
  use_fused_attention_for_examples(*model, examples);
  Batch batch = load_batch(*model);
  // (a batch of examples keeps the model's context: its rows may hold several)
  if (CausalLm* lm = as_causal_lm(*model); lm && batch.inputs.ndim() == 2 && !batch.positions.defined())
    lm->set_context(batch.inputs.dim(1));
  validate_batch(*model, batch);
  // Under mpirun each rank takes its shard of the batch's rows and splits that into --accum micro-batches.
  Communicator& comm = world();
  const TrainOptions& options = f.options;
  const int64_t accum = options.accum;
  check(batch.size() % (accum * comm.size()) == 0,
        "--accum " + std::to_string(accum) + " x " + std::to_string(comm.size()) + " ranks does not split the batch of " +
            std::to_string(batch.size()) + " samples into equal micro-batches");
  // Mixed precision: the weights' compute copy in the half type (no masters: nothing is updated).
  std::unique_ptr<MasterWeights> compute_copy;
  if (options.precision != DType::F32)
    compute_copy = std::make_unique<MasterWeights>(model->params(), options.precision, /*keep_master=*/false);
  LossScaler scaler(options.loss_scale, options.precision);
  RunContext rc = options.run_context(0);
  rc.loss_scale = scaler.scale();
  const int64_t micro = batch.size() / (accum * comm.size());
  const Schedule schedule =
      make_schedule(options.checkpoint, *model, micro, micro * accum, options.activation_budget, rc);
  const double loss = accumulate_data_parallel(*model, batch, accum, rc, &schedule, comm).loss;
  const float scale_used = scaler.scale();
  check(std::isfinite(loss), "non-finite loss (" + std::to_string(loss) + ") in " + precision_name(rc.precision));
  if (compute_copy)
    check(scaler.unscale_and_check(model->params()),
          "gradients overflowed " + precision_name(rc.precision) + " at loss scale " + std::to_string(scale_used) +
              ": pass a smaller --loss-scale");
  if (comm.rank() != 0) return;  // rank 0 reports (every rank holds the summed gradients)
  std::vector<std::pair<std::string, Tensor>> grads;
  for (Param* p : model->params())
    if (p->trainable) grads.emplace_back(p->name, p->ensure_grad());
  consume(loss, grads);
}

}  // namespace frugal
