#include "cli/common.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "core/cpu.h"
#include "core/error.h"
#include "core/threading.h"
#include "core/units.h"
#include "models/cnn.h"
#include "models/config_json.h"
#include "models/gpt.h"
#include "models/llama.h"
#include "models/mlp.h"
#include "models/model_io.h"
#include "models/param_storage.h"
#include "text/hf_tokenizer.h"
#include "text/tokenizer.h"
#include "train/data_parallel.h"

namespace frugal::cli {

void add_model_flags(CLI::App& app, ModelFlags& f) {
  app.add_option("--arch", f.arch, "fresh model architecture (llama: RMSNorm, rotary positions, SwiGLU, grouped-query attention)")
      ->check(CLI::IsMember({"gpt", "llama", "mlp", "cnn", "linear"}))
      ->capture_default_str();
  app.add_option("--model", f.model_dir, "load a model directory (config.json + model.safetensors) instead");
  app.add_option("--layers", f.layers, "blocks (gpt: transformer blocks; mlp: linear layers; cnn: conv blocks)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--dim", f.dim, "width (gpt: n_embd; mlp: hidden units; cnn: channels of the first block)")
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--heads", f.heads, "attention heads (gpt, llama)")->check(CLI::Range(1, 1024));
  app.add_option("--kv-heads", f.kv_heads, "llama: key/value heads shared by the query heads (default heads / 2)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--mlp-dim", f.mlp_dim, "llama: the SwiGLU MLP's intermediate size (default 8/3 dim, a multiple of 8)")
      ->check(CLI::Range(1, 1 << 18));
  app.add_option("--head-dim", f.head_dim, "llama: width of each attention head (default dim / heads; Qwen3 sets its own)")
      ->check(CLI::Range(2, 4096));
  app.add_flag("--qk-norm", f.qk_norm, "llama: RMSNorm on each query and key head before the rotation (a Qwen3 model)");
  app.add_option("--ctx", f.ctx, "context length (gpt, llama)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--vocab", f.vocab, "vocabulary size (gpt, llama; byte-level text needs 256)")->check(CLI::Range(2, 1 << 24));
  app.add_flag("--batchnorm", f.batchnorm, "BatchNorm between the MLP's layers (same as --norm batch)");
  app.add_option("--norm", f.norm, "normalisation in the MLP/CNN: none | batch | group | layer")
      ->check(CLI::IsMember({"none", "batch", "group", "layer"}));
  app.add_option("--loss-chunk", f.loss_chunk, "gpt: rows per chunk of the fused LM head + loss (0: automatic, 256 at GPT-2's vocabulary)");
  app.add_option("--attention", f.attention, "gpt: causal attention kernel: auto (materialising up to T = 384, fused above) | flash | materialized")
      ->check(CLI::IsMember({"auto", "flash", "materialized"}))
      ->capture_default_str();
  app.add_option("--attention-tile", f.attention_tile, "gpt: query/key tile of the fused attention (0: 64)");
  app.add_option("--dropout", f.dropout, "gpt: dropout probability of the embedding, attention and residual "
                                         "dropout while training (default: config.json's *_pdrop, 0 when absent)")
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--embd-dropout", f.embd_dropout, "gpt: dropout after the embedding sum (embd_pdrop)")->check(CLI::Range(0.0, 0.99));
  app.add_option("--attn-dropout", f.attn_dropout, "gpt: dropout on the attention probabilities (attn_pdrop)")
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--resid-dropout", f.resid_dropout, "gpt: dropout on each residual branch's output (resid_pdrop)")
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--tokenizer", f.tokenizer,
                 "tokenizer: a tokenizer.json (Hugging Face, byte-level BPE: GPT-2, Llama 3, Qwen2, SmolLM) or a "
                 "directory with one or with GPT-2's vocab.json + merges.txt; default: the --model directory's, else "
                 "byte-level text");
}

std::string tokenizer_dir(const ModelFlags& f) {
  if (!f.tokenizer.empty()) {
    check(tokenizer_present(f.tokenizer), "--tokenizer " + f.tokenizer +
                                              ": no tokenizer files (expected tokenizer.json, vocab.json + "
                                              "merges.txt, or encoder.json + vocab.bpe)");
    return f.tokenizer;
  }
  return !f.model_dir.empty() && tokenizer_present(f.model_dir) ? f.model_dir : "";
}

namespace {
// A model directory's config.json names its BOS and EOS (Llama 3: 128000, 128001); they win over the
// tokenizer's own guess, as in Hugging Face (eos_token_id may be a list: its first entry).
void apply_config_special_ids(const ModelFlags& f, TextTokenizer& tokenizer) {
  auto* hf = dynamic_cast<HfTokenizer*>(&tokenizer);
  if (!hf || f.model_dir.empty()) return;
  const nlohmann::json config = read_model_config(f.model_dir);
  const auto id = [&](const char* key) -> int32_t {
    if (!config.contains(key)) return -1;
    const nlohmann::json& v = config[key].is_array() && !config[key].empty() ? config[key][0] : config[key];
    return v.is_number_integer() ? v.get<int32_t>() : -1;
  };
  if (id("bos_token_id") >= 0) hf->set_bos_id(id("bos_token_id"));
  if (id("eos_token_id") >= 0) hf->set_eos_id(id("eos_token_id"));
}
}  // namespace

TextTokenizer* model_tokenizer(const ModelFlags& f) {
  static std::map<std::string, std::unique_ptr<TextTokenizer>> loaded;  // plan and train build the model twice
  const std::string dir = tokenizer_dir(f);
  if (dir.empty()) return nullptr;
  auto& slot = loaded[dir];
  if (!slot) {
    slot = load_tokenizer(dir);
    apply_config_special_ids(f, *slot);
  }
  return slot.get();
}

void add_precision_flags(CLI::App& app, PrecisionFlags& f) {
  app.add_option("--precision", f.precision, "storage of activations and the weights' compute copy: fp32 | fp16 | bf16")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}))
      ->capture_default_str();
  app.add_option("--master-weights", f.master_weights, "FP32 master weights in half precision (on|off)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.add_option("--loss-scale", f.loss_scale, "dynamic | none | VALUE (default: dynamic for fp16, none for bf16)");
  app.add_option("--loss-scale-init", f.scaler.value, "initial dynamic loss scale")->capture_default_str();
  app.add_option("--loss-scale-interval", f.scaler.growth_interval,
                 "finite steps in a row before the dynamic scale grows")
      ->capture_default_str();
  app.add_option("--loss-scale-growth", f.scaler.growth, "factor the dynamic scale grows by")->capture_default_str();
  app.add_option("--loss-scale-backoff", f.scaler.backoff, "factor the dynamic scale shrinks by on overflow")
      ->capture_default_str();
}

void apply_precision_flags(const PrecisionFlags& f, TrainOptions& options) {
  options.precision = parse_precision(f.precision);
  options.master_weights = f.master_weights == "on";
  options.loss_scale = f.scaler;
  options.loss_scale.set_mode(f.loss_scale);
}

void add_lora_flags(CLI::App& app, LoraFlags& f) {
  app.add_option("--lora-rank", f.rank, "LoRA rank r (0: off): train only A (r x in) and B (out x r)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  app.add_option("--lora-alpha", f.alpha, "LoRA scale numerator: delta W = (alpha / r) B A (default: r)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--lora-dropout", f.dropout, "dropout on the LoRA path")->check(CLI::Range(0.0, 0.99));
  app.add_option("--lora-targets", f.targets,
                 "modules to adapt (PEFT suffix match): GPT c_attn,c_proj,c_fc (default c_attn); Llama q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj (default q_proj,v_proj); MLP layer indices");
  app.add_option("--adapter", f.adapter, "load a PEFT LoRA adapter directory (its config sets rank, alpha, targets)");
  app.add_option("--base-precision", f.base_precision,
                 "storage of the adapted frozen weights: fp32 | bf16 | fp16 | nf4 | int8 (4/8-bit blocks)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16", "nf4", "int8"}))->capture_default_str();
}

void add_checkpoint_flags(CLI::App& app, CheckpointFlags& f) {
  app.add_option("--checkpoint", f.strategy,
                 "activation checkpointing: store-all | memory-poor (O(1), n(n+1)/2 forwards) | sqrt | optimal")
      ->check(CLI::IsMember({"store-all", "memory-poor", "sqrt", "optimal"}))
      ->capture_default_str();
  app.add_option("--activation-budget", f.activation_budget,
                 "peak activation bytes for --checkpoint optimal (e.g. 64MiB)");
}

void apply_checkpoint_flags(const CheckpointFlags& f, TrainOptions& options) {
  options.checkpoint = f.strategy;
  options.activation_budget = f.activation_budget.empty() ? 0 : static_cast<int64_t>(parse_size(f.activation_budget));
  check(f.activation_budget.empty() || options.activation_budget > 0, "--activation-budget must be positive");
}

void add_training_flags(CLI::App& app, TrainOptions& o, int& threads) {
  app.add_option("--steps", o.steps, "optimizer steps")->check(CLI::Range(int64_t{1}, int64_t{1} << 40))->capture_default_str();
  app.add_option("--micro-batch", o.micro_batch, "samples per micro-batch")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))->capture_default_str();
  app.add_option("--accum", o.accum, "micro-batches per optimizer step (gradient accumulation)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))->capture_default_str();
  app.add_option("--optimizer", o.optimizer, "adamw | adamw8bit (moments in 8 bits, block-wise) | sgd")
      ->check(CLI::IsMember({"adamw", "adamw8bit", "sgd"}))
      ->capture_default_str();
  app.add_option("--optimizer-block", o.optimizer_block,
                 "adamw8bit: numbers per quantisation block, each with an fp32 absmax (a power of 2)")
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--lr", o.lr, "peak learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay, "decoupled weight decay (2-D tensors)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--clip-grad-norm", o.clip_grad_norm, "clip the global gradient norm (0: off)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--warmup", o.warmup, "linear warm-up steps")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--schedule", o.schedule, "cosine | constant")
      ->check(CLI::IsMember({"cosine", "constant"}))->capture_default_str();
  app.add_option("--seed", o.seed, "seed for weights, data order and dropout")->capture_default_str();
  app.add_option("--bn-stats", o.bn_stats,
                 "BatchNorm running statistics under --accum: micro (update per micro-batch) | batch (merge, update once)")
      ->check(CLI::IsMember({"micro", "batch"}))->capture_default_str();
  add_threads_flag(app, threads);
  app.add_flag("--fused-update", o.fused_update,
               "update each block's parameters during the backward pass and free their gradients at once "
               "(needs --accum 1, --clip-grad-norm 0, no loss scaling)");
  app.add_option("--zero", o.zero,
                 "under mpirun: 1 shards optimizer state and FP32 master weights across ranks (ZeRO-1); 2 the "
                 "gradients too (ZeRO-2); 3 the weights too, each block's fetched when it runs (ZeRO-3)")
      ->check(CLI::Range(0, 3))->capture_default_str();
}

void add_threads_flag(CLI::App& app, int& threads) {
  app.add_option("--threads", threads,
                 "OpenMP/OpenBLAS threads (0: OMP_NUM_THREADS if set, else one per physical core)")
      ->check(CLI::Range(0, 1 << 16));
}

void apply_threads(int threads) {
  const int cpus = logical_cpus();
  check(threads <= cpus, "--threads " + std::to_string(threads) + " exceeds the " + std::to_string(cpus) +
                             " CPUs this process may run on (more threads than CPUs wait for each other at every "
                             "barrier); use --threads " + std::to_string(physical_cores()) + " (one per core) or fewer");
  set_num_threads(threads > 0 ? threads : default_threads());
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

namespace {
int64_t or_default(int64_t value, int64_t fallback) { return value > 0 ? value : fallback; }
}  // namespace

namespace {
// The modules --lora-targets names, or the default: GPT's c_attn, every linear layer elsewhere.
std::vector<std::string> lora_targets(const LoraFlags& lora, const Model& model) {
  if (!lora.targets.empty()) return parse_lora_targets(lora.targets);
  if (model.arch() == "gpt") return {"c_attn"};
  if (model.arch() == "llama") return {"q_proj", "v_proj"};  // PEFT's default for Llama models
  std::vector<std::string> all;
  for (const auto& [name, linear] : model.adaptable_linears()) all.push_back(name);
  return all;
}

void attach_lora(Model& model, const LoraFlags& lora, uint64_t seed, LoraSettings* used) {
  check(lora.active() || lora.base_precision == "fp32", "--base-precision applies to LoRA's frozen weights: add --lora-rank");
  check(lora.active() || (lora.alpha == 0 && lora.dropout == 0 && lora.targets.empty()),
        "--lora-alpha/--lora-dropout/--lora-targets need --lora-rank R");
  check(lora.adapter.empty() || lora.dropout == 0, "--adapter brings its own lora_dropout: drop --lora-dropout");
  if (!lora.active()) return;
  LoraSettings settings;
  if (!lora.adapter.empty()) {
    check(lora.rank == 0 && lora.alpha == 0 && lora.targets.empty(),
          "--adapter brings its own rank, alpha and targets: drop --lora-rank/--lora-alpha/--lora-targets");
    settings = load_adapter(model, lora.adapter);
  } else {
    settings.config.rank = lora.rank;
    settings.config.alpha = lora.alpha > 0 ? lora.alpha : static_cast<double>(lora.rank);
    settings.config.dropout = lora.dropout;
    settings.targets = lora_targets(lora, model);
    apply_lora(model, settings, seed);
  }
  if (!quantized_base_format(lora.base_precision))  // (nf4/int8: quantised while the model was built)
    store_adapted_weights_as(model, parse_precision(lora.base_precision, "--base-precision"));
  if (used) *used = settings;
}

// --dropout and the per-site flags over the config's probabilities.
void apply_dropout_flags(const ModelFlags& f, Model& model) {
  if (f.dropout < 0 && f.embd_dropout < 0 && f.attn_dropout < 0 && f.resid_dropout < 0) return;
  CausalLm* lm = as_causal_lm(model);
  check(lm, "--dropout/--embd-dropout/--attn-dropout/--resid-dropout apply to GPT models only");
  const nlohmann::json current = lm->dropout();  // the config's probabilities
  const auto pick = [&](double site, const char* key) {
    return site >= 0 ? site : f.dropout >= 0 ? f.dropout : current[key].get<double>();
  };
  lm->set_dropout(pick(f.embd_dropout, "embd"), pick(f.attn_dropout, "attn"), pick(f.resid_dropout, "resid"));
}

// The model of the flags with shapes only: no weights are read or drawn here.
// Kernel settings of a GPT (chunk and tile sizes), checked here so a bad value is a one-line error.
void apply_kernel_flags(const ModelFlags& f, Model& model) {
  apply_dropout_flags(f, model);
  if (f.loss_chunk == 0 && f.attention == "auto" && f.attention_tile == 0) return;
  CausalLm* lm = as_causal_lm(model);
  check(lm, "--loss-chunk/--attention/--attention-tile apply to language models (gpt, llama) only");
  if (f.loss_chunk != 0) lm->lm_head()->set_chunk_rows(f.loss_chunk);
  if (f.attention_tile != 0) lm->set_attention_tile(f.attention_tile);
  if (f.attention == "flash") lm->set_attention_kernel(AttentionKernel::Flash);
  if (f.attention == "materialized") lm->set_attention_kernel(AttentionKernel::Materialized);
  check(f.attention_tile == 0 || lm->uses_fused_attention(),
        "--attention-tile sets the fused attention's tile, but this model's attention at context " +
            std::to_string(lm->context()) + " materialises (auto does up to 384 positions): add --attention flash, or "
            "drop --attention-tile");
}

// A tokenizer is for GPT models, and every id it gives must be a row of the model's embedding.
void check_tokenizer_fits(const ModelFlags& f, const Model& model) {
  const TextTokenizer* tokenizer = model_tokenizer(f);
  if (!tokenizer) return;
  check(as_causal_lm(model), "--tokenizer applies to language models (gpt, llama), not " + model.arch());
  const int64_t vocab = as_causal_lm(model)->vocab_size();
  check(tokenizer->vocab_size() <= vocab, "the tokenizer of " + tokenizer_dir(f) + " has " +
                                              std::to_string(tokenizer->vocab_size()) +
                                              " tokens, more than the model's vocab_size " + std::to_string(vocab));
}

// A fresh Llama of the flags: SmolLM2's proportions scaled down by default (tied embeddings, two
// query heads per key/value head, an MLP 8/3 as wide as the model).
std::unique_ptr<Model> fresh_llama(const ModelFlags& f) {
  LlamaConfig c;
  c.num_hidden_layers = or_default(f.layers, 4);
  c.hidden_size = or_default(f.dim, 128);
  c.num_attention_heads = or_default(f.heads, 4);
  c.num_key_value_heads = or_default(f.kv_heads, std::max<int64_t>(1, c.num_attention_heads / 2));
  c.intermediate_size = or_default(f.mlp_dim, (c.hidden_size * 8 / 3 + 7) / 8 * 8);
  c.explicit_head_dim = f.head_dim;
  if (f.qk_norm) c.model_type = "qwen3";
  c.max_position_embeddings = or_default(f.ctx, 64);
  c.tie_word_embeddings = true;
  c.rms_norm_eps = 1e-5;
  const TextTokenizer* tokenizer = model_tokenizer(f);
  c.vocab_size = or_default(f.vocab, tokenizer ? tokenizer->vocab_size() : 256);
  // A fresh model trains on every position it was given (--ctx): Llama's own default of at most
  // 2048 is for loaded configs, whose max_position_embeddings is no request of the user's.
  auto model = std::make_unique<Llama>(c, c.max_position_embeddings);
  check_tokenizer_fits(f, *model);
  return model;
}

std::unique_ptr<Model> construct_architecture(const ModelFlags& f, const std::string& data) {
  std::unique_ptr<Model> model;
  if (!f.model_dir.empty()) {
    check(f.layers == 0 && f.dim == 0 && f.heads == 0 && f.kv_heads == 0 && f.mlp_dim == 0 && f.head_dim == 0 &&
              !f.qk_norm && f.vocab == 0 && f.norm.empty() && !f.batchnorm,
          "--model " + f.model_dir +
              " brings its own architecture: drop --layers/--dim/--heads/--kv-heads/--mlp-dim/--head-dim/--qk-norm/"
              "--vocab/--norm/--batchnorm");
    model = model_from_config(read_model_config(f.model_dir));
    if (f.ctx > 0) {
      check(as_causal_lm(*model), "--ctx applies to language models (gpt, llama) only");
      as_causal_lm(*model)->set_context(f.ctx);
    }
    check_tokenizer_fits(f, *model);
    return model;
  }
  const bool images = data == "fashion-mnist";
  const bool language_model = f.arch == "gpt" || f.arch == "llama";
  check(language_model || f.tokenizer.empty(), "--tokenizer applies to language models (gpt, llama), not " + f.arch);
  check(f.arch == "llama" || (f.kv_heads == 0 && f.mlp_dim == 0 && f.head_dim == 0 && !f.qk_norm),
        "--kv-heads/--mlp-dim/--head-dim/--qk-norm apply to --arch llama only");
  if (f.arch == "llama") {
    model = fresh_llama(f);
  } else if (f.arch == "gpt") {
    GptConfig c;
    c.n_layer = or_default(f.layers, 4);
    c.n_embd = or_default(f.dim, 128);
    c.n_head = or_default(f.heads, 4);
    c.n_positions = or_default(f.ctx, 64);
    const TextTokenizer* tokenizer = model_tokenizer(f);
    c.vocab_size = or_default(f.vocab, tokenizer ? tokenizer->vocab_size() : 256);
    model = std::make_unique<Gpt>(c);
    check_tokenizer_fits(f, *model);
  } else if (f.arch == "mlp") {
    MlpConfig c;
    c.n_layers = or_default(f.layers, 3);
    c.hidden = or_default(f.dim, images ? 256 : 64);
    c.in_features = images ? 28 * 28 : 32;
    c.out_features = images ? 10 : 8;
    c.classification = images;
    c.norm = f.batchnorm ? "batch" : (f.norm.empty() ? "none" : f.norm);
    model = std::make_unique<Mlp>(c);
  } else if (f.arch == "cnn") {
    CnnConfig c;
    c.channels = or_default(f.dim, 16);
    c.n_blocks = or_default(f.layers, 2);
    if (!f.norm.empty()) c.norm = f.norm;
    model = std::make_unique<Cnn>(c);
  } else {
    check(f.arch == "linear", "unknown --arch '" + f.arch + "'");
    model = std::make_unique<LinearRegression>(32, 8);
  }
  check(language_model || (f.heads == 0 && f.ctx == 0 && f.vocab == 0),
        "--heads/--ctx/--vocab apply to --arch gpt and llama only");
  check(f.arch == "mlp" || !f.batchnorm, "--batchnorm applies to --arch mlp only (the CNN's --norm defaults to batch)");
  check(f.arch == "mlp" || f.arch == "cnn" || f.norm.empty(), "--norm applies to --arch mlp and cnn only");
  check(!f.batchnorm || f.norm.empty() || f.norm == "batch", "--batchnorm contradicts --norm " + f.norm);
  return model;
}

std::unique_ptr<Model> construct_base_model(const ModelFlags& f, const std::string& data) {
  std::unique_ptr<Model> model = construct_architecture(f, data);
  apply_kernel_flags(f, *model);
  return model;
}
}  // namespace

std::unique_ptr<Model> build_model(const ModelFlags& f, const std::string& data, uint64_t seed, bool with_weights,
                                   const LoraFlags& lora, LoraSettings* lora_used, const StorageFlags& storage) {
  std::unique_ptr<Model> model = build_base_model(f, data, seed, with_weights, lora, storage);
  attach_lora(*model, lora, seed, lora_used);
  return model;
}

std::unique_ptr<Model> build_base_model(const ModelFlags& f, const std::string& data, uint64_t seed, bool with_weights,
                                        const LoraFlags& lora, const StorageFlags& storage) {
  // Every tensor is born in the type it keeps (models/param_storage.h): a half model never exists
  // in fp32 as a whole, neither drawn nor loaded; a quantised base is quantised one tensor at a time.
  const std::optional<QuantFormat> quantized = lora.active() ? quantized_base_format(lora.base_precision) : std::nullopt;
  std::vector<std::string> adapted;
  std::unique_ptr<Model> model = build_in_storage([&] { return construct_base_model(f, data); }, [&](const Model& m) {
    ParamStorage s;
    s.precision = storage.precision;
    s.master_weights = storage.master_weights;
    s.frozen_base = lora.active();
    if (lora.active() && !quantized) s.base = parse_precision(lora.base_precision, "--base-precision");
    if (lora.active()) {
      const std::vector<std::string> targets =
          lora.adapter.empty() ? lora_targets(lora, m) : read_adapter_config(lora.adapter, m.arch()).targets;
      s.adapted = adapted = adapted_weight_names(m, targets);
    }
    s.quantized_base = quantized.has_value();
    // ZeRO (full fine-tuning; LoRA's trainable adapters come later): the trainer's owners, by the same rule.
    if (storage.shard_ranks > 1 && !lora.active()) {
      const std::vector<Param*> params = m.params();
      const std::vector<int> owners = zero_owners(params, storage.shard_ranks);
      for (size_t k = 0; k < params.size(); ++k)
        if (owners[k] != storage.shard_rank)
          (storage.zero == 3 ? s.held_elsewhere : s.master_elsewhere).push_back(params[k]->name);
    }
    return s;
  });
  if (with_weights && !f.model_dir.empty() && !f.weights_from_state) load_weights(*model, f.model_dir);
  else if (with_weights) model->init_weights(seed);
  if (quantized) {
    const Model& m = *model;
    quantize_adapted_weights(*model, adapted, *quantized, [&](size_t index, const Tensor& scratch) {
      if (!with_weights) return;
      if (!f.model_dir.empty() && !f.weights_from_state) read_weight(m, f.model_dir, m.params()[index]->name, scratch);
      else m.init_param(index, scratch, seed);
    });
  }
  return model;
}

}  // namespace frugal::cli
