// --resume: the run configuration a checkpoint stores, and taking it back (see train_flags.h).
#include <functional>
#include <vector>

#include "cli/train_flags.h"
#include "core/error.h"
#include "train/quantized_base_record.h"

namespace frugal::cli {

namespace {

// One flag of the run: how to read it from the flags and write it back.
struct RunFlag {
  const char* name;
  std::function<nlohmann::json(const TrainFlags&)> get;
  std::function<void(TrainFlags&, const nlohmann::json&)> set;
};

template <typename T>
RunFlag field(const char* name, T TrainFlags::*group, auto member) {
  return {name, [group, member](const TrainFlags& f) { return nlohmann::json((f.*group).*member); },
          [group, member](TrainFlags& f, const nlohmann::json& v) {
            (f.*group).*member = v.get<std::remove_reference_t<decltype((f.*group).*member)>>();
          }};
}

const std::vector<RunFlag>& run_flags() {
  static const std::vector<RunFlag> flags = {
      field("--arch", &TrainFlags::model, &ModelFlags::arch),
      field("--model", &TrainFlags::model, &ModelFlags::model_dir),
      field("--layers", &TrainFlags::model, &ModelFlags::layers),
      field("--dim", &TrainFlags::model, &ModelFlags::dim),
      field("--heads", &TrainFlags::model, &ModelFlags::heads),
      field("--ctx", &TrainFlags::model, &ModelFlags::ctx),
      field("--vocab", &TrainFlags::model, &ModelFlags::vocab),
      field("--batchnorm", &TrainFlags::model, &ModelFlags::batchnorm),
      field("--norm", &TrainFlags::model, &ModelFlags::norm),
      field("--tokenizer", &TrainFlags::model, &ModelFlags::tokenizer),
      field("--attention", &TrainFlags::model, &ModelFlags::attention),
      field("--attention-tile", &TrainFlags::model, &ModelFlags::attention_tile),
      field("--loss-chunk", &TrainFlags::model, &ModelFlags::loss_chunk),
      field("--dropout", &TrainFlags::model, &ModelFlags::dropout),
      field("--embd-dropout", &TrainFlags::model, &ModelFlags::embd_dropout),
      field("--attn-dropout", &TrainFlags::model, &ModelFlags::attn_dropout),
      field("--resid-dropout", &TrainFlags::model, &ModelFlags::resid_dropout),
      {"--data", [](const TrainFlags& f) { return nlohmann::json(f.data); },
       [](TrainFlags& f, const nlohmann::json& v) { f.data = v.get<std::string>(); }},
      field("--micro-batch", &TrainFlags::options, &TrainOptions::micro_batch),
      field("--accum", &TrainFlags::options, &TrainOptions::accum),
      field("--optimizer", &TrainFlags::options, &TrainOptions::optimizer),
      field("--optimizer-block", &TrainFlags::options, &TrainOptions::optimizer_block),
      field("--lr", &TrainFlags::options, &TrainOptions::lr),
      field("--weight-decay", &TrainFlags::options, &TrainOptions::weight_decay),
      field("--clip-grad-norm", &TrainFlags::options, &TrainOptions::clip_grad_norm),
      field("--warmup", &TrainFlags::options, &TrainOptions::warmup),
      field("--schedule", &TrainFlags::options, &TrainOptions::schedule),
      field("--seed", &TrainFlags::options, &TrainOptions::seed),
      field("--bn-stats", &TrainFlags::options, &TrainOptions::bn_stats),
      field("--zero", &TrainFlags::options, &TrainOptions::zero),
      field("--fused-update", &TrainFlags::options, &TrainOptions::fused_update),
      field("--checkpoint", &TrainFlags::checkpoint, &CheckpointFlags::strategy),
      field("--activation-budget", &TrainFlags::checkpoint, &CheckpointFlags::activation_budget),
      field("--precision", &TrainFlags::precision, &PrecisionFlags::precision),
      field("--master-weights", &TrainFlags::precision, &PrecisionFlags::master_weights),
      field("--loss-scale", &TrainFlags::precision, &PrecisionFlags::loss_scale),
      {"--loss-scale-init", [](const TrainFlags& f) { return nlohmann::json(f.precision.scaler.value); },
       [](TrainFlags& f, const nlohmann::json& v) { f.precision.scaler.value = v.get<double>(); }},
      {"--loss-scale-interval", [](const TrainFlags& f) { return nlohmann::json(f.precision.scaler.growth_interval); },
       [](TrainFlags& f, const nlohmann::json& v) { f.precision.scaler.growth_interval = v.get<int64_t>(); }},
      {"--loss-scale-growth", [](const TrainFlags& f) { return nlohmann::json(f.precision.scaler.growth); },
       [](TrainFlags& f, const nlohmann::json& v) { f.precision.scaler.growth = v.get<double>(); }},
      {"--loss-scale-backoff", [](const TrainFlags& f) { return nlohmann::json(f.precision.scaler.backoff); },
       [](TrainFlags& f, const nlohmann::json& v) { f.precision.scaler.backoff = v.get<double>(); }},
      field("--lora-rank", &TrainFlags::lora, &LoraFlags::rank),
      field("--lora-alpha", &TrainFlags::lora, &LoraFlags::alpha),
      field("--lora-dropout", &TrainFlags::lora, &LoraFlags::dropout),
      field("--lora-targets", &TrainFlags::lora, &LoraFlags::targets),
      field("--adapter", &TrainFlags::lora, &LoraFlags::adapter),
      field("--base-precision", &TrainFlags::lora, &LoraFlags::base_precision),
  };
  return flags;
}

}  // namespace

nlohmann::json run_config(const TrainFlags& f, int world_size) {
  nlohmann::json j;
  for (const RunFlag& flag : run_flags()) j[flag.name] = flag.get(f);
  j["--steps"] = f.options.steps;
  j["world_size"] = world_size;
  return j;
}

std::string adopt_checkpoint_config(TrainFlags& f, const CheckpointRef& checkpoint, int world_size) {
  const nlohmann::json& saved = checkpoint.trainer.at("run");
  const std::string where = "--resume: the checkpoint " + checkpoint.dir;
  check(saved.at("world_size").get<int>() == world_size,
        where + " was written by " + std::to_string(saved.at("world_size").get<int>()) + " ranks, this run has " +
            std::to_string(world_size) + " (the data shards would differ)");
  std::string taken;
  const TrainFlags defaults;  // (a named object: GCC 12 warns falsely about a temporary's strings)
  for (const RunFlag& flag : run_flags()) {
    // (a flag newer than the checkpoint: its default, which is what that run used)
    const nlohmann::json value = saved.contains(flag.name) ? saved.at(flag.name) : flag.get(defaults);
    if (f.given.count(flag.name)) {
      check(flag.get(f) == value, where + " has " + flag.name + " " + value.dump() + ", which contradicts " + flag.name +
                                      " " + flag.get(f).dump() + " given here (drop the flag, or start a new run)");
      continue;
    }
    flag.set(f, value);
    if (value != flag.get(defaults)) taken += std::string(" ") + flag.name + " " + value.dump();
  }
  if (!f.given.count("--steps")) {
    f.options.steps = saved.at("--steps").get<int64_t>();
    taken += " --steps " + std::to_string(f.options.steps);
  }
  if (checkpoint.trainer.contains("quantized_base")) {
    // No model file: the run's own model flags stay (taken above), its frozen base is rebuilt from
    // the directory it came from, unchanged, or from the seed, and quantised again; the state file
    // holds everything else.
    f.model.model_dir = verify_quantized_base(checkpoint.trainer.at("quantized_base"), checkpoint.dir);
    return taken;
  }
  // The architecture and weights come from the checkpoint's model directory (and its state file);
  // what the directory does not hold stays: the training context (a fresh GPT's n_positions, or
  // shorter), the tokenizer (no tokenizer files there), and the kernels (their rounding differs, so a
  // resumed run must use the same ones to continue bit for bit).
  ModelFlags kept = f.model;
  f.model = ModelFlags{};
  f.model.model_dir = checkpoint.dir;
  f.model.weights_from_state = checkpoint.trainer.value("sharded", false);
  f.model.ctx = kept.ctx;
  f.model.tokenizer = kept.tokenizer;
  f.model.attention = kept.attention;
  f.model.attention_tile = kept.attention_tile;
  f.model.loss_chunk = kept.loss_chunk;
  f.model.dropout = kept.dropout;  // (the checkpoint's config.json holds the model's own *_pdrop too)
  f.model.embd_dropout = kept.embd_dropout;
  f.model.attn_dropout = kept.attn_dropout;
  f.model.resid_dropout = kept.resid_dropout;
  return taken;
}

}  // namespace frugal::cli
