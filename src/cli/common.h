#pragma once
// Flags shared by the commands that build or load a model (DESIGN.md "Command-line contract").
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "models/lora_setup.h"
#include "models/model.h"
#include "train/trainer.h"

namespace frugal {
class TextTokenizer;
}

namespace frugal::cli {

struct ModelFlags {
  std::string arch = "gpt";
  std::string model_dir;  // --model DIR: load instead of building fresh
  int64_t layers = 0, dim = 0, heads = 0, ctx = 0, vocab = 0;  // 0: the architecture's default
  int64_t kv_heads = 0, mlp_dim = 0, head_dim = 0;              // llama (0: its default)
  bool qk_norm = false;                                         // llama: Qwen3's per-head q/k norms
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

// The tokenizer directory of the flags: --tokenizer, else the --model directory when it holds
// tokenizer files, else "" (byte-level text). Error for a --tokenizer without tokenizer files.
std::string tokenizer_dir(const ModelFlags& f);
// That tokenizer, loaded once per process (nullptr when there is none).
TextTokenizer* model_tokenizer(const ModelFlags& f);

// --precision fp32|fp16|bf16, --master-weights on|off, --loss-scale dynamic|none|VALUE and the
// dynamic scaler's settings (train, grad, plan).
struct PrecisionFlags {
  std::string precision = "fp32";
  std::string master_weights = "on";
  std::string loss_scale;  // empty: dynamic for fp16, none for bf16
  LossScaleOptions scaler;
};

// LoRA: --lora-rank R (0: off) --lora-alpha A --lora-dropout P --lora-targets LIST, or --adapter DIR.
struct LoraFlags {
  int64_t rank = 0;
  double alpha = 0;  // 0: alpha = rank (scale 1, PEFT's default pairing r = lora_alpha = 8)
  double dropout = 0;
  std::string targets;  // empty: c_attn for GPT, every linear layer otherwise
  std::string adapter;  // load a PEFT adapter directory
  std::string base_precision = "fp32";  // fp32 | bf16 | fp16 for the adapted (frozen) weights
  bool active() const { return rank > 0 || !adapter.empty(); }
};
void add_lora_flags(CLI::App& app, LoraFlags& flags);

void add_model_flags(CLI::App& app, ModelFlags& flags);
void add_precision_flags(CLI::App& app, PrecisionFlags& flags);
// Parses the flags into options; TrainOptions::validate checks their combinations (the Trainer
// calls it, and so does every command that runs without one).
void apply_precision_flags(const PrecisionFlags& flags, TrainOptions& options);
void add_training_flags(CLI::App& app, TrainOptions& options, int& threads);

// --threads N for every command; apply_threads sets OpenMP's and OpenBLAS's thread count: N, or for 0
// OMP_NUM_THREADS when set, else one thread per physical core. Error when N exceeds the CPUs this
// process may run on.
void add_threads_flag(CLI::App& app, int& threads);
void apply_threads(int threads);

// --checkpoint and --activation-budget (train, grad, plan). apply_checkpoint_flags parses the budget.
struct CheckpointFlags {
  std::string strategy = "store-all";
  std::string activation_budget;
};
void add_checkpoint_flags(CLI::App& app, CheckpointFlags& flags);
void apply_checkpoint_flags(const CheckpointFlags& flags, TrainOptions& options);

// Output locations are checked before a run starts, so a typo does not cost a finished run:
// a file's directory must exist; a directory is created.
void check_output_file(const std::string& path, const std::string& flag);
void prepare_output_dir(const std::string& dir, const std::string& flag);

// The storage a run gives its weights (--precision, --master-weights): parameters are born in it.
struct StorageFlags {
  DType precision = DType::F32;
  bool master_weights = true;
  // --zero K on this rank of how many: the FP32 masters (K >= 1) or the weights (K = 3) other
  // ranks own are never allocated here.
  int zero = 0, shard_rank = 0, shard_ranks = 1;
};
// The storage of a run with options `o` on `rank` (by default one process, nothing sharded).
inline StorageFlags storage_flags(const TrainOptions& o, const Communicator* rank = nullptr) {
  const bool sharded = o.zero >= 1 && rank && rank->size() > 1;
  return {o.precision, o.master_weights, sharded ? o.zero : 0, sharded ? rank->rank() : 0, sharded ? rank->size() : 1};
}

// The model of --arch (fresh, weights from the seed) or --model DIR (loaded), without LoRA, each
// tensor born in the type the run keeps it in (LoRA flags say which base weights are frozen and
// adapted). With with_weights = false the model is only built (for the planner's measuring ledger).
std::unique_ptr<Model> build_base_model(const ModelFlags& flags, const std::string& data, uint64_t seed,
                                        bool with_weights, const LoraFlags& lora = {}, const StorageFlags& storage = {});

// build_base_model, then with LoRA flags the adapters attached (or loaded) and the base frozen;
// `lora_used` receives the settings when it is not null.
std::unique_ptr<Model> build_model(const ModelFlags& flags, const std::string& data, uint64_t seed,
                                   bool with_weights, const LoraFlags& lora = {}, LoraSettings* lora_used = nullptr,
                                   const StorageFlags& storage = {});

// `frugal NAME` subcommands; each registers its flags and the function that runs it.
void register_train(CLI::App& app);
void register_grad(CLI::App& app);
void register_generate(CLI::App& app);
void register_plan(CLI::App& app);
void register_experiment(CLI::App& app);
void register_lora(CLI::App& app);
void register_svd(CLI::App& app);
void register_doctor(CLI::App& app);
void register_tokenize(CLI::App& app);

}  // namespace frugal::cli
