#pragma once
// What a run does, read back from the objects built for it rather than from its flags: the model's
// config and training context, its LoRA adapters and the storage of their frozen bases, and the
// options the trainer runs with. `frugal plan --json` and the train summary print it as "run", so a
// setting that a default quietly overrode shows (issue 32: a fresh Llama asked for --ctx 8192
// planned 2048 positions).
#include <nlohmann/json.hpp>

#include "models/model.h"
#include "train/trainer.h"

namespace frugal {

// {"arch", "config" (config.json's fields), "context" (language models), "lora" (null without
// adapters: else rank, alpha, dropout, targets, base_storage), "training" {micro_batch, accum,
// optimizer, optimizer_block (adamw8bit), lr, weight_decay, clip_grad_norm, warmup, schedule, seed,
// bn_stats (models with BatchNorm), checkpoint, activation_budget, zero, fused_update, threads},
// "precision" {precision, master_weights, loss_scale {mode, and init/interval/growth/backoff when
// dynamic, value when fixed}}}.
nlohmann::json describe_run(const Model& model, const TrainOptions& options);

// Settings that this run's model and options would leave unused (--optimizer-block without
// adamw8bit, --bn-stats batch without BatchNorm, the dynamic loss scale's knobs where the scale is
// not dynamic): refused with one line (an Error naming the flag), never silently dropped. Called on
// the options a run ends with (after --memory-budget chose), with its model.
void check_settings_apply(const TrainOptions& options, const Model& model);

}  // namespace frugal
