#pragma once
// A run described once: everything the flags of `frugal train|plan|grad|generate|chat`, a --config file
// or a Python spec dict say (DESIGN.md "Command-line contract"). They all fill this struct through
// one table of keys (run/spec_options.h), and the library builds the run from it (run/model_builder.h,
// run/train_run.h, ...): nothing above this layer decides what a model is.
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "train/generate.h"
#include "train/trainer.h"

namespace frugal {

// The commands that run a described run; each reads the keys it has (run/spec_options.cpp).
enum class Command { Train, Plan, Grad, Generate, Chat };
const char* command_name(Command command);

struct ModelSpec {
  std::string arch = "gpt";
  std::string model_dir;  // --model DIR: load instead of building fresh
  int64_t layers = 0, dim = 0, heads = 0, ctx = 0, vocab = 0;  // 0: the architecture's default
  int64_t kv_heads = 0, mlp_dim = 0, head_dim = 0;              // llama (0: its default)
  bool qk_norm = false;                                         // llama: Qwen3's per-head q/k norms
  bool untied_head = false;                                     // llama: an LM head of its own (not the embedding)
  bool batchnorm = false;  // alias of --norm batch
  std::string norm;        // empty: the architecture's default (mlp none, cnn batch)
  int64_t loss_chunk = 0;  // GPT: rows per chunk of the fused LM head + loss (0: its default)
  std::string attention = "auto";  // GPT: auto | flash | materialized
  int64_t attention_tile = 0;      // GPT: the fused attention's tile (0: its default)
  std::string tokenizer;  // a tokenizer.json or tokenizer directory (empty: --model's, if it has one; else bytes)
  // GPT dropout while training (< 0: the config's embd_pdrop / attn_pdrop / resid_pdrop); --dropout
  // sets all three, the others one each (and win over --dropout).
  double dropout = -1, embd_dropout = -1, attn_dropout = -1, resid_dropout = -1;
  // --resume from a sharded checkpoint: model_dir holds config.json only; the weights are drawn from
  // the seed and then replaced by each rank's state file.
  bool weights_from_state = false;
};

// --precision fp32|fp16|bf16, --master-weights on|off, --loss-scale dynamic|none|VALUE and the
// dynamic scaler's settings (train, grad, plan).
struct PrecisionSpec {
  std::string precision = "fp32";
  std::string master_weights = "on";
  std::string loss_scale;  // empty: dynamic for fp16, none for bf16
  LossScaleOptions scaler;
};

// LoRA: --lora-rank R (0: off) --lora-alpha A --lora-dropout P --lora-targets LIST, or --adapter DIR.
struct LoraSpec {
  int64_t rank = 0;
  double alpha = 0;  // 0: alpha = rank (scale 1, PEFT's default pairing r = lora_alpha = 8)
  double dropout = 0;
  std::string targets;  // empty: c_attn for GPT, every linear layer otherwise
  std::string adapter;  // load a PEFT adapter directory
  std::string base_precision = "fp32";  // fp32 | bf16 | fp16 | nf4 | int8 for the adapted (frozen) weights
  bool quantize_head = false;           // an untied frozen LM head in base_precision's nf4/int8 too
  bool active() const { return rank > 0 || !adapter.empty(); }
};

// --checkpoint and --activation-budget (train, grad, plan).
struct CheckpointSpec {
  std::string strategy = "store-all";
  std::string activation_budget;
};

// --memory-budget SIZE --batch-size N [--allow precision,optimizer] and --memory-limit SIZE
// (run/autopilot_spec.h).
struct MemorySpec {
  std::string budget;  // "": no autopilot
  int64_t batch_size = 0;
  std::string allow;  // comma-separated: precision, optimizer
  std::string limit;  // "": none (train: the budget, when there is one)
};

// Where `train` writes, and what it does besides training.
struct OutputSpec {
  std::string save_dir, save_adapter_dir, summary_path, metrics_path, plots_dir;
  int64_t sample_tokens = 300;
  int64_t save_every = 0;  // training-state checkpoint every N steps into --save DIR/checkpoints
  int keep = 3;            // checkpoints kept
  std::string resume;      // --resume DIR
};

// `plan`'s own: --json and --ranks.
struct PlanOutputSpec {
  bool json = false;
  int ranks = 1;  // plan each rank of an mpirun job of this many (their shards under --zero)
};

// `grad`'s own: the batch file and where the gradients go (its --accum is options.accum).
struct GradSpec {
  std::string batch_path, out_path;
};

// `generate`'s and `chat`'s own (the model, adapter, base precision and tokenizer are the model and
// LoRA specs'; the seed is options.seed; --chat-template and --chat-template-kwargs are ChatSpec's).
struct GenerateSpec {
  std::string prompt;
  std::string messages;  // --messages FILE.json: a chat rendered with the template instead of --prompt
  std::string system;    // chat's --system TEXT: the first message of every conversation
  SampleOptions sample;
  bool no_kv_cache = false, stream = false, timing = false;
};

// Instruction / chat data (--data FILE.jsonl; text/chat_records.h, text/chat_examples.h,
// train/chat_data.h) and evaluation while training.
struct ChatSpec {
  std::string data_format = "auto";  // auto | chat | sharegpt | prompt-completion | alpaca | text
  std::string chat_template;         // --chat-template FILE (default: the model's)
  std::string template_kwargs;       // --chat-template-kwargs JSON object
  std::string train_on;              // assistant | completion | all ("": the format's default)
  bool packing = false;
  std::string truncate = "right";    // right | left | drop
  bool skip_bad = false;             // --skip-bad-examples
  std::string eval_data;             // --eval-data FILE.jsonl
  double eval_fraction = 0;          // --eval-fraction F: held out of --data instead
  int64_t eval_every = 0;            // steps between evaluations (0: at the end only, when there is eval data)
  bool save_best = false;            // keep the model with the lowest eval loss in --save DIR/best
};

// True when `data` is chat data: a .jsonl file, or any file with --data-format other than auto.
bool is_chat_data(const std::string& data, const ChatSpec& chat);

struct RunSpec {
  ModelSpec model;
  PrecisionSpec precision;
  CheckpointSpec checkpoint;
  LoraSpec lora;
  TrainOptions options;
  MemorySpec memory;
  std::string data = "fortunes";
  int threads = 0;
  OutputSpec output;
  PlanOutputSpec plan;
  GradSpec grad;
  GenerateSpec generate;
  ChatSpec chat;
  std::string config;           // --config FILE it was read from ("" when none)
  std::set<std::string> given;  // keys set by the user (command line, config file or spec dict), as "--key"
  // The command line as given ("frugal", "train", flags...; a spec dict's stands for one): plan
  // --memory-budget prints it back with the chosen settings.
  std::vector<std::string> command_line;
};

// A command's defaults (train: the built-in demo's settings; plan: micro-batch 16; ...).
RunSpec default_spec(Command command);

// The one validation of a spec's combinations that need no model: the checkpoint and precision
// strings parsed into the options, TrainOptions::validate, and each command's own rules (train's
// outputs against LoRA and ZeRO, grad's and generate's --model). The combinations that need the
// model are checked where it is built (run/model_builder.h: a loaded model's own architecture, LoRA
// settings; train/run_description.h check_settings_apply: settings the model would leave unused).
// Output locations are checked by check_output_file and prepare_output_dir.
void resolve_spec(RunSpec& spec, Command command);

// Output locations are checked before a run starts, so a typo does not cost a finished run:
// a file's directory must exist; a directory is created.
void check_output_file(const std::string& path, const std::string& flag);
void prepare_output_dir(const std::string& dir, const std::string& flag);

// OpenMP's and OpenBLAS's thread count: N, or for 0 OMP_NUM_THREADS when set, else one thread per
// physical core. Error when N exceeds the CPUs this process may run on.
void apply_threads(int threads);

// --checkpoint/--activation-budget and the precision flags parsed into options.
void apply_checkpoint_spec(const CheckpointSpec& spec, TrainOptions& options);
void apply_precision_spec(const PrecisionSpec& spec, TrainOptions& options);

// The storage a run gives its weights (--precision, --master-weights): parameters are born in it.
struct StorageSpec {
  DType precision = DType::F32;
  bool master_weights = true;
  // --zero K on this rank of how many: the FP32 masters (K >= 1) or the weights (K = 3) other
  // ranks own are never allocated here.
  int zero = 0, shard_rank = 0, shard_ranks = 1;
};
// The storage of a run with options `o` on `rank` (by default one process, nothing sharded).
inline StorageSpec storage_spec(const TrainOptions& o, const Communicator* rank = nullptr) {
  const bool sharded = o.zero >= 1 && rank && rank->size() > 1;
  return {o.precision, o.master_weights, sharded ? o.zero : 0, sharded ? rank->rank() : 0, sharded ? rank->size() : 1};
}

}  // namespace frugal
