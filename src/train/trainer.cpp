#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

#include "core/error.h"
#include "io/safetensors.h"
#include "kernels/convert.h"
#include "train/accumulate.h"
#include "train/data_parallel.h"
#include "train/sharded_weights.h"

namespace frugal {

void TrainOptions::validate() const {
  check(steps >= 1, "--steps must be at least 1");
  check(micro_batch >= 1, "--micro-batch must be at least 1");
  check(accum >= 1, "--accum must be at least 1");
  check(lr > 0 && std::isfinite(lr), "--lr must be a positive number");
  check(weight_decay >= 0, "--weight-decay must be >= 0");
  check(warmup >= 0, "--warmup must be >= 0");
  check(schedule == "cosine" || schedule == "constant", "--schedule must be cosine or constant");
  check(optimizer == "adamw" || optimizer == "adamw8bit" || optimizer == "sgd",
        "--optimizer must be adamw, adamw8bit or sgd, not '" + optimizer + "'");
  check(optimizer_block >= 16 && (optimizer_block & (optimizer_block - 1)) == 0,
        "--optimizer-block must be a power of 2 of at least 16, not " + std::to_string(optimizer_block));
  check(bn_stats == "micro" || bn_stats == "batch", "--bn-stats must be micro or batch, not '" + bn_stats + "'");
  check(zero >= 0 && zero <= 3, "--zero must be 0, 1, 2 or 3");
  if (fused_update) {  // (DESIGN-NOTES, "Fused updates": why each is refused)
    check(accum == 1, "--fused-update needs --accum 1: it updates a block before the next micro-batch could add to "
                      "its gradients");
    check(clip_grad_norm <= 0, "--fused-update cannot clip by the global gradient norm (the first block is updated "
                               "before the last gradient exists): pass --clip-grad-norm 0");
    const bool scaled = loss_scale.mode == "dynamic" || loss_scale.mode == "static" ||
                        (loss_scale.mode == "auto" && precision == DType::F16);
    check(!scaled, "--fused-update cannot skip an overflowing step (blocks are updated before every gradient is "
                   "checked): use --precision bf16, or --loss-scale none");
  }
  // Precision: the one place its combinations are checked.
  check(precision == DType::F32 || is_half(precision), "--precision must be fp32, fp16 or bf16");
  loss_scale.validate();
  check(master_weights || precision != DType::F32, "--master-weights off needs --precision fp16 or bf16");
  check(precision != DType::F32 || loss_scale.mode == "auto", "--loss-scale needs --precision fp16 or bf16");
}

RunContext TrainOptions::run_context(int64_t step) const {
  RunContext rc;
  rc.training = true;
  rc.seed = seed;
  rc.step = static_cast<uint64_t>(step);
  rc.defer_running_stats = bn_stats == "batch";
  rc.precision = precision;
  return rc;
}

namespace {
// For each block, the parameters (indices into params) whose gradients are final once its backward
// has run: those it uses that no block before it in the chain uses (backward runs last to first);
// last, the parameters of no block (updated after the pass).
std::vector<std::vector<size_t>> blocks_finalizing(Model& model, const std::vector<Param*>& params) {
  const auto& blocks = model.blocks();
  std::vector<std::vector<size_t>> out(blocks.size() + 1);
  for (size_t k = 0; k < params.size(); ++k) {
    size_t owner = blocks.size();
    for (size_t i = 0; i < blocks.size() && owner == blocks.size(); ++i) {
      std::vector<Param*> used;
      blocks[i]->collect_params(used);
      if (std::find(used.begin(), used.end(), params[k]) != used.end()) owner = i;
    }
    out[owner].push_back(k);
  }
  return out;
}
}  // namespace

Trainer::Trainer(Model& model, DataSource& data, const TrainOptions& options, Communicator* comm)
    : model_(model), data_(data), options_(options), params_(model.params()),
      scaler_(options.loss_scale, options.precision), comm_(comm ? *comm : world()) {
  options_.validate();
  check(options.zero == 0 || comm_.size() > 1,
        "--zero " + std::to_string(options.zero) + " shards training state across the ranks of an mpirun job, and this "
        "process is the only rank: start it with mpirun -np N (frugal plan: --ranks N), or use --zero 0");
  if (options.zero == 3) check_zero3();
  std::vector<bool> owned;
  if (options.zero >= 1 && comm_.size() > 1) {
    owners_ = zero_owners(params_, comm_.size());
    // ZeRO-3 first: the weights other ranks own are released before anything else refers to them.
    if (options.zero == 3)
      sharded_weights_ = std::make_unique<ShardedWeights>(model, params_, owners_, options.precision, comm_);
    for (size_t k = 0; k < params_.size(); ++k) {
      owned.push_back(owners_[k] == comm_.rank());
      zero_views_.push_back(*params_[k]);
      zero_views_.back().trainable = params_[k]->trainable && owned.back();
    }
  }
  if (options.precision != DType::F32)
    masters_ = std::make_unique<MasterWeights>(params_, options.precision, options.master_weights, owned);
  // Every rank's compute copies now (ZeRO-1/2 ranks were born with masters only for their own); not
  // under ZeRO-3, where each rank holds different weights.
  if (options.zero != 3) check_same_parameters(params_, comm_);
  optimizer_ = make_optimizer(options.optimizer, options.weight_decay, options.optimizer_block);
  if (options.fused_update) check(comm_.size() == 1, "--fused-update runs in one process (under mpirun use --zero 2)");
  if (options.fused_update || sharded_gradients()) final_after_block_ = blocks_finalizing(model, params_);
  schedule_ = make_schedule(options.checkpoint, model, options.micro_batch, options.batch_size(), options.activation_budget,
                            options.run_context(0));
}

Trainer::~Trainer() = default;

void Trainer::check_zero3() const {
  for (const Param* p : params_)
    check(p->trainable, "--zero 3 shards the weights of full fine-tuning; " + p->name +
                            " is frozen (LoRA: the trainable state is already small; use --zero 2 or 0)");
}

StepRecord Trainer::step(int64_t step_index) {
  if (options_.fused_update) return fused_step(step_index);
  const auto start = std::chrono::steady_clock::now();
  StepRecord record;
  record.step = step_index;
  // The whole optimizer batch (every rank draws the same one); each rank runs its shard of it.
  const Batch batch = data_.batch(step_index, options_.batch_size() * comm_.size());
  RunContext rc = options_.run_context(step_index);
  rc.loss_scale = scaler_.scale();
  record.loss_scale = scaler_.scale();
  // ZeRO-2: each block's gradients go to their owners as soon as its backward ends (every micro-batch).
  double reduce_s = 0.0;  // ZeRO-2's reductions, timed like the allreduce (waiting included)
  const std::function<void(int)> reduce = [&](int block) { reduce_s += reduce_to_owners(block); };
  if (sharded_gradients()) rc.after_backward = &reduce;
  rc.block_weights = sharded_weights_.get();
  const AccumulatedPass pass =
      accumulate_data_parallel(model_, batch, options_.accum, rc, &schedule_, comm_, !sharded_gradients());
  if (sharded_gradients()) reduce_s += reduce_to_owners(-1);
  if (rc.defer_running_stats) model_.apply_deferred_statistics();
  record.loss = pass.loss;
  record.items = pass.items;
  record.forward_calls = pass.forward_calls;
  record.communication_s = pass.communication_s + reduce_s;
  if (sharded_weights_) record.communication_s += sharded_weights_->take_fetch_seconds();
  // Without a loss scaler (fp32, or bf16/fp16 with --loss-scale none) a non-finite loss or gradient
  // stops training, naming the first layer whose output or gradient went non-finite.
  const bool scaled = masters_ && scaler_.active();
  if (batch.inputs.has_data()) {
    if (!std::isfinite(record.loss)) diagnose_non_finite("non-finite loss (" + std::to_string(record.loss) + ")", batch, rc);
    if (!scaled && !gradients_finite(params_, across())) diagnose_non_finite("non-finite gradients", batch, rc);
  }
  record.lr = scheduled_lr(options_.lr, step_index, options_.steps, options_.warmup, options_.schedule);
  MemoryLedger::current().set_phase("optimizer step");  // for --memory-limit's message
  // With loss scaling: gradients are unscaled before clipping, and a step with an inf or NaN
  // gradient is skipped so that nothing non-finite reaches the (master) weights.
  if (scaled && !scaler_.unscale_and_check(params_, across())) {
    record.skipped = true;
  } else {
    record.grad_norm = clip_grad_norm(params_, options_.clip_grad_norm, across());
    if (masters_) {
      masters_->step(*optimizer_, record.lr);
      record.lost_update_fraction = masters_->lost_update_fraction();
    } else if (!owners_.empty()) {
      std::vector<Param*> views;
      for (size_t k = 0; k < params_.size(); ++k) {
        zero_views_[k].grad = params_[k]->grad;
        views.push_back(&zero_views_[k]);
      }
      optimizer_->step(views, record.lr);
    } else {
      optimizer_->step(params_, record.lr);
    }
    // ZeRO-1/2: the updated shards to every rank (ZeRO-3: each rank keeps its own).
    if (!owners_.empty() && !sharded_weights_) broadcast_from_owners(params_, owners_, comm_);
  }
  zero_grads(params_);
  MemoryLedger::current().set_phase("");
  record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return record;
}

StepRecord Trainer::fused_step(int64_t step_index) {
  const auto start = std::chrono::steady_clock::now();
  StepRecord record;
  record.step = step_index;
  const Batch batch = data_.batch(step_index, options_.batch_size());
  RunContext rc = options_.run_context(step_index);
  record.lr = scheduled_lr(options_.lr, step_index, options_.steps, options_.warmup, options_.schedule);
  if (masters_) masters_->begin_step(*optimizer_);
  else optimizer_->begin_step(params_);
  double squared_norm = 0.0;
  const std::function<void(int)> update = [&](int block) { update_block(block, record.lr, squared_norm); };
  rc.after_backward = &update;
  const AccumulatedPass pass = accumulate_gradients(model_, batch, 1, rc, &schedule_);
  update_block(-1, record.lr, squared_norm);
  if (rc.defer_running_stats) model_.apply_deferred_statistics();
  record.loss = pass.loss;
  record.items = pass.items;
  record.forward_calls = pass.forward_calls;
  record.grad_norm = std::sqrt(squared_norm);
  if (masters_) record.lost_update_fraction = masters_->lost_update_fraction();
  check(!batch.inputs.has_data() || std::isfinite(record.loss),
        "non-finite loss (" + std::to_string(record.loss) + ") at step " + std::to_string(step_index + 1) +
            "; training stopped (checkpoints already written are kept; try a lower --lr)");
  record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return record;
}

double Trainer::reduce_to_owners(int block) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<size_t>& ks = block >= 0 ? final_after_block_[static_cast<size_t>(block)] : final_after_block_.back();
  for (size_t k : ks) {
    Param* p = params_[k];
    if (!p->trainable) continue;
    const Tensor& g = p->ensure_grad();  // every rank reduces every tensor, whoever's it is
    if (g.has_data()) comm_.reduce_sum(g.f32(), g.numel(), owners_[k]);
    // The owner's buffer holds the sum so far (the next micro-batch adds to it); the others start
    // the next micro-batch from a fresh (zero) gradient.
    if (owners_[k] != comm_.rank()) p->grad = Tensor();
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Trainer::update_block(int block, float lr, double& squared_norm) {
  const std::vector<size_t>& ks = block >= 0 ? final_after_block_[static_cast<size_t>(block)] : final_after_block_.back();
  for (size_t k : ks) {
    Param* p = params_[k];
    if (!p->trainable || !p->grad.defined()) continue;
    if (p->grad.has_data()) {
      // Checked before the update: a non-finite gradient must not reach the weights.
      check(gradients_finite({p}), "non-finite gradient of " + p->name + " (--fused-update: blocks after it in "
                                   "the backward pass are already updated); training stopped; try a lower --lr");
      const double norm = clip_grad_norm({p}, 0.0);  // (max_norm 0: the norm only)
      squared_norm += norm * norm;
    }
    if (masters_) masters_->update_param(*optimizer_, k, lr);
    else if (p->value.has_data()) optimizer_->update_param(params_, k, lr);  // (nothing to update when planning)
    p->grad = Tensor();  // freed at once: the next step allocates it again
  }
}

void Trainer::diagnose_non_finite(const std::string& what, const Batch& batch, RunContext rc) {
  // The step again, looking at every layer's output and gradient (all ranks take part: the
  // decision to get here was global).
  zero_grads(params_);
  NonFiniteProbe probe;
  rc.probe = &probe;
  accumulate_data_parallel(model_, batch, options_.accum, rc, &schedule_, comm_);
  zero_grads(params_);
  throw Error(what + " at step " + std::to_string(rc.step + 1) + ": the first non-finite value is the " +
              (probe.first.empty() ? std::string("(none found when the step ran again)") : probe.first) +
              "; training stopped (checkpoints already written are kept; try a lower --lr)");
}

std::vector<std::pair<std::string, Tensor>> Trainer::state_tensors() {
  // ZeRO: this rank's share, the parameters it owns (the others' values come from their owners).
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t k = 0; k < params_.size(); ++k)
    if ((owners_.empty() || owners_[k] == comm_.rank()) && !params_[k]->value.is_placeholder())  // (not a quantised base)
      out.emplace_back("param/" + params_[k]->name, params_[k]->value);
  // A sharded checkpoint has no model file: each rank's running statistics (BatchNorm) go here.
  if (!owners_.empty())
    for (Param* b : model_.state())
      if (std::find(params_.begin(), params_.end(), b) == params_.end()) out.emplace_back("buffer/" + b->name, b->value);
  if (masters_) {
    for (auto& t : masters_->master_tensors()) out.push_back(t);  // (its own masters only)
    for (auto& t : optimizer_->state_tensors(masters_->optimizer_params())) out.push_back(t);
  } else {
    std::vector<Param*> updated = params_;  // ZeRO in fp32: the views the optimizer steps
    if (!owners_.empty())
      for (size_t k = 0; k < params_.size(); ++k) updated[k] = &zero_views_[k];
    for (auto& t : optimizer_->state_tensors(updated)) out.push_back(t);
  }
  return out;
}

nlohmann::json Trainer::state_json() const {
  return {{"optimizer", optimizer_->name()}, {"optimizer_steps", optimizer_->steps_taken()}, {"loss_scaler", scaler_.state()}};
}

void Trainer::restore_state(const SafetensorsFile& file, const nlohmann::json& state) {
  check(state.at("optimizer").get<std::string>() == optimizer_->name(),
        file.path() + ": the checkpoint was written by " + state.at("optimizer").get<std::string>() + ", not " +
            optimizer_->name());
  // Every tensor this trainer would write must be in the file, with the same shape; load_into
  // copies into the existing buffers (parameters in their stored dtype, state in fp32).
  for (auto& [name, tensor] : state_tensors()) {
    check(file.contains(name), file.path() + ": the checkpoint has no '" + name + "' (a different model or settings)");
    file.load_into(name, tensor);
  }
  optimizer_->set_steps_taken(state.at("optimizer_steps").get<int64_t>());
  scaler_.set_state(state.at("loss_scaler"));
  // ZeRO-1/2: every rank's copies of the weights others own, frozen ones (LoRA's base, owned by rank
  // 0) included: the resumed model was drawn from the seed (ZeRO-3 keeps only its own).
  if (!owners_.empty() && !sharded_weights_) broadcast_from_owners(params_, owners_, comm_, /*frozen_too=*/true);
}

void Trainer::finish() {
  if (masters_) masters_->restore_fp32();
  masters_.reset();
  // ZeRO-1/2: the exact fp32 values of the parameters other ranks own (not only their rounded
  // copies). ZeRO-3: each rank keeps its own (gather_model collects them).
  if (!owners_.empty() && !sharded_weights_) broadcast_from_owners(params_, owners_, comm_);
}

void Trainer::gather_model(int root) {
  if (sharded_weights_) sharded_weights_->gather_fp32(root);
}

}  // namespace frugal
