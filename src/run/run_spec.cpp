#include "run/run_spec.h"

#include <filesystem>

#include "core/cpu.h"
#include "core/error.h"
#include "core/threading.h"
#include "core/units.h"
#include "models/lora_setup.h"
#include "text/chat_examples.h"
#include "text/chat_records.h"
#include "train/chat_data.h"

namespace frugal {

const char* command_name(Command command) {
  switch (command) {
    case Command::Train: return "train";
    case Command::Plan: return "plan";
    case Command::Grad: return "grad";
    case Command::Generate: return "generate";
    case Command::Chat: return "chat";
  }
  return "?";
}

RunSpec default_spec(Command command) {
  RunSpec s;
  if (command == Command::Train) {  // the demo: about a minute on 2 cores
    s.options.steps = 1200;
    s.options.micro_batch = 16;
    s.options.lr = 2e-3f;
    s.options.warmup = 50;
  }
  if (command == Command::Plan) s.options.micro_batch = 16;
  if (command == Command::Grad) s.data = "";
  if (command == Command::Chat) s.generate.sample.tokens = 512;  // a reply's limit (it usually ends at end-of-turn)
  return s;
}

void apply_checkpoint_spec(const CheckpointSpec& f, TrainOptions& options) {
  options.checkpoint = f.strategy;
  options.activation_budget = f.activation_budget.empty() ? 0 : static_cast<int64_t>(parse_size(f.activation_budget));
  check(f.activation_budget.empty() || options.activation_budget > 0, "--activation-budget must be positive");
}

void apply_precision_spec(const PrecisionSpec& f, TrainOptions& options) {
  options.precision = parse_precision(f.precision);
  options.master_weights = f.master_weights == "on";
  options.loss_scale = f.scaler;
  options.loss_scale.set_mode(f.loss_scale);
}

namespace {

// What train writes, against the rest of the spec: LoRA on a base quantised to nf4/int8 has no
// model to --save, and checkpoints without weights.
void check_train_outputs(const RunSpec& f) {
  const OutputSpec& o = f.output;
  check(o.save_every == 0 || !o.save_dir.empty(), "--save-every needs --save DIR (checkpoints go to DIR/checkpoints)");
  const bool quantized = f.lora.active() && quantized_base_format(f.lora.base_precision);
  check(o.save_dir.empty() || !quantized || o.save_every > 0,
        "--save with --base-precision " + f.lora.base_precision + ": the base stays quantised and is not written as a "
        "model; save the adapter with --save-adapter DIR (--save DIR --save-every N writes training checkpoints)");
  check(!quantized || o.save_every == 0 || f.options.zero == 0,
        "--save-every with --base-precision " + f.lora.base_precision + " and --zero: not supported (a quantised "
        "base's checkpoint rebuilds the base on --resume, the sharded one the whole model from its state files)");
  check(o.save_adapter_dir.empty() || f.lora.active(), "--save-adapter needs LoRA (--lora-rank R or --adapter DIR)");
}

// Chat data's settings: what a sample is (packed rows or one example each), and the settings that
// would change what is trained on refused without chat data (--truncate and --skip-bad-examples,
// which change nothing there, are left alone).
void check_chat_spec(RunSpec& s, Command command) {
  const ChatSpec& c = s.chat;
  const bool chat = is_chat_data(s.data, c);
  using Rows = TrainOptions::SampleRows;
  s.options.sample_rows = !chat ? Rows::Windows : c.packing ? Rows::PackedExamples : Rows::RaggedExamples;
  parse_chat_format(c.data_format);
  parse_train_on(c.train_on);
  parse_truncate(c.truncate);
  const bool evaluating = !c.eval_data.empty() || c.eval_fraction > 0;
  check(c.eval_data.empty() || c.eval_fraction == 0, "--eval-data and --eval-fraction: give one of them");
  check(c.eval_fraction >= 0 && c.eval_fraction < 1, "--eval-fraction must be in [0, 1)");
  check(evaluating || (c.eval_every == 0 && !c.save_best), "--eval-every and --save-best need --eval-data or --eval-fraction");
  check(!c.save_best || command != Command::Train || !s.output.save_dir.empty(), "--save-best needs --save DIR");
  check(!evaluating || s.options.zero < 3, "evaluation while training with --zero 3 is not supported (each rank holds "
                                           "a share of the weights); evaluate the saved model instead");
  if (chat) return;
  for (const auto& [given, key] : {std::pair{c.packing, "--packing"}, std::pair{!c.chat_template.empty(), "--chat-template"},
                                   std::pair{!c.train_on.empty(), "--train-on"}, std::pair{evaluating, "--eval-data"},
                                   std::pair{!c.template_kwargs.empty(), "--chat-template-kwargs"}})
    check(!given, std::string(key) + " needs chat data: --data FILE.jsonl (or --data-format)");
}

}  // namespace

bool is_chat_data(const std::string& data, const ChatSpec& chat) {
  const std::string ext = ".jsonl";
  return chat.data_format != "auto" ||
         (data.size() > ext.size() && data.compare(data.size() - ext.size(), ext.size(), ext) == 0);
}

void resolve_spec(RunSpec& s, Command command) {
  if (command == Command::Generate || command == Command::Chat) {
    check(!s.model.model_dir.empty(), std::string("frugal ") + command_name(command) + " needs --model DIR");
    check(s.lora.base_precision == "fp32" || !s.lora.adapter.empty(),
          "--base-precision applies to an adapter's base: add --adapter DIR");
    check(s.generate.messages.empty() || (s.generate.prompt.empty() && !s.given.count("--prompt")),
          "--messages and --prompt: give one of them (the messages render the prompt)");
    const bool templated = command == Command::Chat || !s.generate.messages.empty();
    check(templated || (s.chat.chat_template.empty() && s.chat.template_kwargs.empty()),
          "--chat-template and --chat-template-kwargs need --messages FILE.json (or frugal chat)");
    s.generate.sample.seed = s.options.seed;
    s.generate.sample.kv_cache = !s.generate.no_kv_cache;
    check_sample_options(s.generate.sample);
    return;
  }
  if (command == Command::Grad) check(!s.model.model_dir.empty(), "frugal grad needs --model DIR");
  if (command == Command::Train) check_train_outputs(s);
  apply_checkpoint_spec(s.checkpoint, s.options);
  apply_precision_spec(s.precision, s.options);
  check_chat_spec(s, command);
  if (command == Command::Train || command == Command::Grad) s.options.validate();
}

void check_output_file(const std::string& path, const std::string& flag) {
  if (path.empty()) return;
  namespace fs = std::filesystem;
  const fs::path parent = fs::path(path).parent_path();
  check(parent.empty() || fs::is_directory(parent), flag + " " + path + ": directory " + parent.string() + " does not exist");
  check(!fs::is_directory(path), flag + " " + path + " is a directory");
}

void prepare_output_dir(const std::string& dir, const std::string& flag) {
  if (dir.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  check(!ec && std::filesystem::is_directory(dir), flag + " " + dir + ": cannot create directory (" + ec.message() + ")");
}

void apply_threads(int threads) {
  const int cpus = logical_cpus();
  check(threads <= cpus, "--threads " + std::to_string(threads) + " exceeds the " + std::to_string(cpus) +
                             " CPUs this process may run on (more threads than CPUs wait for each other at every "
                             "barrier); use --threads " + std::to_string(physical_cores()) + " (one per core) or fewer");
  set_num_threads(threads > 0 ? threads : default_threads());
}

}  // namespace frugal
