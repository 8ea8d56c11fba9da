// The settings a run is recorded by, and taking them back on --resume (see run_record.h).
#include <functional>
#include <set>
#include <vector>

#include "run/run_record.h"
#include "core/error.h"
#include "train/quantized_base_record.h"

namespace frugal {

namespace {

// One flag of the run: how to read it from the flags and write it back.
struct RunFlag {
  const char* name;
  std::function<nlohmann::json(const RunSpec&)> get;
  std::function<void(RunSpec&, const nlohmann::json&)> set;
};

template <typename T>
RunFlag field(const char* name, T RunSpec::*group, auto member) {
  return {name, [group, member](const RunSpec& f) { return nlohmann::json((f.*group).*member); },
          [group, member](RunSpec& f, const nlohmann::json& v) {
            (f.*group).*member = v.get<std::remove_reference_t<decltype((f.*group).*member)>>();
          }};
}

// Longer than 60 lines because it is one table: a line per run-defining flag, in the order --help
// lists them, is easier to check against spec_options.cpp than a table split over functions.
const std::vector<RunFlag>& run_flags() {
  static const std::vector<RunFlag> flags = {
      field("--arch", &RunSpec::model, &ModelSpec::arch),
      field("--model", &RunSpec::model, &ModelSpec::model_dir),
      field("--layers", &RunSpec::model, &ModelSpec::layers),
      field("--dim", &RunSpec::model, &ModelSpec::dim),
      field("--heads", &RunSpec::model, &ModelSpec::heads),
      field("--kv-heads", &RunSpec::model, &ModelSpec::kv_heads),
      field("--mlp-dim", &RunSpec::model, &ModelSpec::mlp_dim),
      field("--head-dim", &RunSpec::model, &ModelSpec::head_dim),
      field("--qk-norm", &RunSpec::model, &ModelSpec::qk_norm),
      field("--untied-head", &RunSpec::model, &ModelSpec::untied_head),
      field("--ctx", &RunSpec::model, &ModelSpec::ctx),
      field("--vocab", &RunSpec::model, &ModelSpec::vocab),
      field("--batchnorm", &RunSpec::model, &ModelSpec::batchnorm),
      field("--norm", &RunSpec::model, &ModelSpec::norm),
      field("--tokenizer", &RunSpec::model, &ModelSpec::tokenizer),
      field("--attention", &RunSpec::model, &ModelSpec::attention),
      field("--attention-tile", &RunSpec::model, &ModelSpec::attention_tile),
      field("--loss-chunk", &RunSpec::model, &ModelSpec::loss_chunk),
      field("--dropout", &RunSpec::model, &ModelSpec::dropout),
      field("--embd-dropout", &RunSpec::model, &ModelSpec::embd_dropout),
      field("--attn-dropout", &RunSpec::model, &ModelSpec::attn_dropout),
      field("--resid-dropout", &RunSpec::model, &ModelSpec::resid_dropout),
      {"--data", [](const RunSpec& f) { return nlohmann::json(f.data); },
       [](RunSpec& f, const nlohmann::json& v) { f.data = v.get<std::string>(); }},
      field("--micro-batch", &RunSpec::options, &TrainOptions::micro_batch),
      field("--accum", &RunSpec::options, &TrainOptions::accum),
      field("--optimizer", &RunSpec::options, &TrainOptions::optimizer),
      field("--optimizer-block", &RunSpec::options, &TrainOptions::optimizer_block),
      field("--lr", &RunSpec::options, &TrainOptions::lr),
      field("--weight-decay", &RunSpec::options, &TrainOptions::weight_decay),
      field("--clip-grad-norm", &RunSpec::options, &TrainOptions::clip_grad_norm),
      field("--warmup", &RunSpec::options, &TrainOptions::warmup),
      field("--schedule", &RunSpec::options, &TrainOptions::schedule),
      field("--seed", &RunSpec::options, &TrainOptions::seed),
      field("--bn-stats", &RunSpec::options, &TrainOptions::bn_stats),
      field("--zero", &RunSpec::options, &TrainOptions::zero),
      field("--fused-update", &RunSpec::options, &TrainOptions::fused_update),
      field("--checkpoint", &RunSpec::checkpoint, &CheckpointSpec::strategy),
      field("--activation-budget", &RunSpec::checkpoint, &CheckpointSpec::activation_budget),
      field("--precision", &RunSpec::precision, &PrecisionSpec::precision),
      field("--master-weights", &RunSpec::precision, &PrecisionSpec::master_weights),
      field("--loss-scale", &RunSpec::precision, &PrecisionSpec::loss_scale),
      {"--loss-scale-init", [](const RunSpec& f) { return nlohmann::json(f.precision.scaler.value); },
       [](RunSpec& f, const nlohmann::json& v) { f.precision.scaler.value = v.get<double>(); }},
      {"--loss-scale-interval", [](const RunSpec& f) { return nlohmann::json(f.precision.scaler.growth_interval); },
       [](RunSpec& f, const nlohmann::json& v) { f.precision.scaler.growth_interval = v.get<int64_t>(); }},
      {"--loss-scale-growth", [](const RunSpec& f) { return nlohmann::json(f.precision.scaler.growth); },
       [](RunSpec& f, const nlohmann::json& v) { f.precision.scaler.growth = v.get<double>(); }},
      {"--loss-scale-backoff", [](const RunSpec& f) { return nlohmann::json(f.precision.scaler.backoff); },
       [](RunSpec& f, const nlohmann::json& v) { f.precision.scaler.backoff = v.get<double>(); }},
      field("--data-format", &RunSpec::chat, &ChatSpec::data_format),
      field("--chat-template", &RunSpec::chat, &ChatSpec::chat_template),
      field("--chat-template-kwargs", &RunSpec::chat, &ChatSpec::template_kwargs),
      field("--train-on", &RunSpec::chat, &ChatSpec::train_on),
      field("--packing", &RunSpec::chat, &ChatSpec::packing),
      field("--truncate", &RunSpec::chat, &ChatSpec::truncate),
      field("--skip-bad-examples", &RunSpec::chat, &ChatSpec::skip_bad),
      field("--eval-data", &RunSpec::chat, &ChatSpec::eval_data),
      field("--eval-fraction", &RunSpec::chat, &ChatSpec::eval_fraction),
      field("--eval-every", &RunSpec::chat, &ChatSpec::eval_every),
      field("--lora-rank", &RunSpec::lora, &LoraSpec::rank),
      field("--lora-alpha", &RunSpec::lora, &LoraSpec::alpha),
      field("--lora-dropout", &RunSpec::lora, &LoraSpec::dropout),
      field("--lora-targets", &RunSpec::lora, &LoraSpec::targets),
      field("--adapter", &RunSpec::lora, &LoraSpec::adapter),
      field("--base-precision", &RunSpec::lora, &LoraSpec::base_precision),
      field("--quantize-head", &RunSpec::lora, &LoraSpec::quantize_head),
  };
  return flags;
}

// A record's keys without their dashes ("arch"); checkpoints before the config files wrote "--arch".
nlohmann::json undashed(const nlohmann::json& record) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : record.items()) out[key.rfind("--", 0) == 0 ? key.substr(2) : key] = value;
  return out;
}

}  // namespace

// Settings whose default means "not set" (0 sizes: the architecture's or the loaded config's; -1
// dropout: the config's; empty text: none or automatic): left out of a record while unset, so that
// replaying it sets nothing a flag would refuse (--layers 0).
bool unset(const RunFlag& flag, const nlohmann::json& value) {
  static const std::set<std::string> sentinel = {
      "--model",   "--layers",  "--dim",       "--heads",        "--kv-heads",        "--mlp-dim",
      "--head-dim", "--ctx",    "--vocab",     "--norm",         "--tokenizer",       "--dropout",
      "--embd-dropout", "--attn-dropout", "--resid-dropout", "--activation-budget", "--loss-scale",
      "--lora-targets", "--adapter", "--chat-template", "--chat-template-kwargs", "--train-on", "--eval-data"};
  static const RunSpec defaults = default_spec(Command::Train);
  return sentinel.count(flag.name) && value == flag.get(defaults);
}

bool unset_setting(const std::string& key, const nlohmann::json& value) {
  for (const RunFlag& flag : run_flags())
    if (key == flag.name + 2) return unset(flag, value);
  return false;
}

nlohmann::json run_settings(const RunSpec& f) {
  nlohmann::json j = nlohmann::json::object();
  for (const RunFlag& flag : run_flags()) {
    const nlohmann::json value = flag.get(f);
    if (!unset(flag, value)) j[flag.name + 2] = value;
  }
  j["steps"] = f.options.steps;
  return j;
}

nlohmann::json checkpoint_record(const RunSpec& f, int world_size) {
  nlohmann::json j = run_settings(f);
  j["world_size"] = world_size;
  return j;
}

std::string adopt_checkpoint_settings(RunSpec& f, const CheckpointRef& checkpoint, int world_size) {
  const nlohmann::json saved = undashed(checkpoint.trainer.at("run"));
  const std::string where = "--resume: the checkpoint " + checkpoint.dir;
  check(saved.at("world_size").get<int>() == world_size,
        where + " was written by " + std::to_string(saved.at("world_size").get<int>()) + " ranks, this run has " +
            std::to_string(world_size) + " (the data shards would differ)");
  std::string taken;
  const RunSpec defaults = default_spec(Command::Train);  // (a named object: GCC 12 warns falsely about a temporary's strings)
  for (const RunFlag& flag : run_flags()) {
    // (a flag newer than the checkpoint: its default, which is what that run used)
    const nlohmann::json value = saved.contains(flag.name + 2) ? saved.at(flag.name + 2) : flag.get(defaults);
    if (f.given.count(flag.name)) {
      check(flag.get(f) == value, where + " has " + flag.name + " " + value.dump() + ", which contradicts " + flag.name +
                                      " " + flag.get(f).dump() + " given here (drop the flag, or start a new run)");
      continue;
    }
    flag.set(f, value);
    if (value != flag.get(defaults)) taken += std::string(" ") + flag.name + " " + value.dump();
  }
  if (!f.given.count("--steps")) {
    f.options.steps = saved.at("steps").get<int64_t>();
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
  ModelSpec kept = f.model;
  f.model = ModelSpec{};
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

}  // namespace frugal
