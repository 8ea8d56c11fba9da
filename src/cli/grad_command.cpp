// `frugal grad`: one forward + backward on a given batch, no update. Prints {"loss": x} and writes
// every trainable parameter's gradient under its parameter name (with LoRA: the adapter's keys).
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/threading.h"
#include "io/safetensors.h"
#include "models/causal_lm.h"
#include "train/accumulate.h"
#include "train/batch.h"
#include "train/data_parallel.h"

namespace frugal::cli {

namespace {

struct GradFlags {
  ModelFlags model;
  PrecisionFlags precision;
  CheckpointFlags checkpoint;
  LoraFlags lora;
  std::string batch_path, out_path;
  int64_t accum = 1;
  int threads = 0;
};

void run_grad(GradFlags& f) {
  check(!f.model.model_dir.empty(), "frugal grad needs --model DIR");
  if (world().rank() == 0) check_output_file(f.out_path, "--out");
  apply_threads(f.threads);
  MemoryLedger ledger;
  LedgerScope scope(ledger);
  std::unique_ptr<Model> model = build_model(f.model, "", 0, /*with_weights=*/true, f.lora);

  const SafetensorsFile file = SafetensorsFile::open(f.batch_path);
  check(file.contains("inputs") && file.contains("targets"),
        f.batch_path + ": a batch needs tensors 'inputs' and 'targets'");
  Batch batch{file.load("inputs", MemCategory::Activations, model->input_dtype()),
              file.load("targets", MemCategory::Activations, model->target_dtype())};
  if (CausalLm* lm = as_causal_lm(*model); lm && batch.inputs.ndim() == 2) lm->set_context(batch.inputs.dim(1));
  validate_batch(*model, batch);
  // Under mpirun each rank takes its shard of the batch's rows and splits that into --accum micro-batches.
  Communicator& comm = world();
  check(batch.size() % (f.accum * comm.size()) == 0,
        "--accum " + std::to_string(f.accum) + " x " + std::to_string(comm.size()) + " ranks does not split the batch of " +
            std::to_string(batch.size()) + " samples into equal micro-batches");
  TrainOptions options;
  apply_checkpoint_flags(f.checkpoint, options);
  apply_precision_flags(f.precision, options);
  options.validate();
  // Mixed precision: the weights' compute copy in the half type (no masters: nothing is updated).
  std::unique_ptr<MasterWeights> compute_copy;
  if (options.precision != DType::F32)
    compute_copy = std::make_unique<MasterWeights>(model->params(), options.precision, /*keep_master=*/false);
  LossScaler scaler(options.loss_scale, options.precision);
  RunContext rc = options.run_context(0);
  rc.loss_scale = scaler.scale();
  const int64_t micro = batch.size() / (f.accum * comm.size());
  const Schedule schedule =
      make_schedule(options.checkpoint, *model, micro, micro * f.accum, options.activation_budget, rc);
  const double loss = accumulate_data_parallel(*model, batch, f.accum, rc, &schedule, comm).loss;
  const float scale_used = scaler.scale();
  check(std::isfinite(loss), "non-finite loss (" + std::to_string(loss) + ") in " + precision_name(rc.precision));
  if (compute_copy)
    check(scaler.unscale_and_check(model->params()),
          "gradients overflowed " + precision_name(rc.precision) + " at loss scale " + std::to_string(scale_used) +
              ": pass a smaller --loss-scale");
  if (comm.rank() != 0) return;  // rank 0 writes (every rank holds the summed gradients)
  std::vector<std::pair<std::string, Tensor>> grads;
  for (Param* p : model->params())
    if (p->trainable) grads.emplace_back(p->name, p->ensure_grad());
  write_safetensors(f.out_path, grads);
  std::printf("%s\n", nlohmann::json{{"loss", loss}}.dump().c_str());
}

}  // namespace

void register_grad(CLI::App& app) {
  auto flags = std::make_shared<GradFlags>();
  CLI::App* cmd = app.add_subcommand("grad", "one forward + backward on a batch; prints the loss, writes gradients");
  add_model_flags(*cmd, flags->model);
  add_checkpoint_flags(*cmd, flags->checkpoint);
  add_lora_flags(*cmd, flags->lora);
  add_precision_flags(*cmd, flags->precision);
  cmd->add_option("--batch", flags->batch_path, "safetensors file with 'inputs' and 'targets'")->required();
  cmd->add_option("--out", flags->out_path, "where to write the gradients (safetensors)")->required();
  cmd->add_option("--accum", flags->accum, "split the batch into K equal micro-batches and accumulate")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  add_threads_flag(*cmd, flags->threads);
  cmd->callback([flags] { run_grad(*flags); });
}

}  // namespace frugal::cli
