#include "run/model_builder.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "core/error.h"
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

namespace frugal {

std::string tokenizer_dir(const ModelSpec& f) {
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
// tokenizer's own guess, as in Hugging Face.
void apply_config_special_ids(const ModelSpec& f, TextTokenizer& tokenizer) {
  auto* hf = dynamic_cast<HfTokenizer*>(&tokenizer);
  if (hf && !f.model_dir.empty()) hf->apply_model_config(read_model_config(f.model_dir));
}
}  // namespace

TextTokenizer* model_tokenizer(const ModelSpec& f) {
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

namespace {
int64_t or_default(int64_t value, int64_t fallback) { return value > 0 ? value : fallback; }

// The modules --lora-targets names, or the default: GPT's c_attn, every linear layer elsewhere.
std::vector<std::string> lora_targets(const LoraSpec& lora, const Model& model) {
  if (!lora.targets.empty()) return parse_lora_targets(lora.targets);
  if (model.arch() == "gpt") return {"c_attn"};
  if (model.arch() == "llama") return {"q_proj", "v_proj"};  // PEFT's default for Llama models
  std::vector<std::string> all;
  for (const auto& [name, linear] : model.adaptable_linears()) all.push_back(name);
  return all;
}

void attach_lora(Model& model, const LoraSpec& lora, uint64_t seed, LoraSettings* used) {
  check(lora.active() || lora.base_precision == "fp32", "--base-precision applies to LoRA's frozen weights: add --lora-rank");
  check(!lora.quantize_head || quantized_base_format(lora.base_precision),
        "--quantize-head stores the frozen LM head in --base-precision's format: give --base-precision nf4 or int8");
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
  if (lora.quantize_head) quantize_lm_head(model, *quantized_base_format(lora.base_precision));  // (frozen now)
  if (used) *used = settings;
}

// --dropout and the per-site flags over the config's probabilities.
void apply_dropout_flags(const ModelSpec& f, Model& model) {
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
// Chat examples (`examples`) run the fused attention kernel, the only one that masks them from each
// other: Auto becomes Flash, so the schedule, the plan and the report all see the kernel that runs.
void apply_kernel_flags(const ModelSpec& f, Model& model, bool examples) {
  apply_dropout_flags(f, model);
  if (examples && f.attention == "auto")
    if (CausalLm* lm = as_causal_lm(model)) lm->set_attention_kernel(AttentionKernel::Flash);
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
void check_tokenizer_fits(const ModelSpec& f, const Model& model) {
  const TextTokenizer* tokenizer = model_tokenizer(f);
  if (!tokenizer) return;
  check(as_causal_lm(model), "--tokenizer applies to language models (gpt, llama), not " + model.arch());
  const int64_t vocab = as_causal_lm(model)->vocab_size();
  check(tokenizer->vocab_size() <= vocab, "the tokenizer of " + tokenizer_dir(f) + " has " +
                                              std::to_string(tokenizer->vocab_size()) +
                                              " tokens, more than the model's vocab_size " + std::to_string(vocab));
}

// A fresh Llama of the flags: SmolLM2's proportions scaled down by default (tied embeddings unless
// --untied-head, two query heads per key/value head, an MLP 8/3 as wide as the model).
std::unique_ptr<Model> fresh_llama(const ModelSpec& f) {
  LlamaConfig c;
  c.num_hidden_layers = or_default(f.layers, 4);
  c.hidden_size = or_default(f.dim, 128);
  c.num_attention_heads = or_default(f.heads, 4);
  c.num_key_value_heads = or_default(f.kv_heads, std::max<int64_t>(1, c.num_attention_heads / 2));
  c.intermediate_size = or_default(f.mlp_dim, (c.hidden_size * 8 / 3 + 7) / 8 * 8);
  c.explicit_head_dim = f.head_dim;
  if (f.qk_norm) c.model_type = "qwen3";
  c.max_position_embeddings = or_default(f.ctx, 64);
  c.tie_word_embeddings = !f.untied_head;
  c.rms_norm_eps = 1e-5;
  const TextTokenizer* tokenizer = model_tokenizer(f);
  c.vocab_size = or_default(f.vocab, tokenizer ? tokenizer->vocab_size() : 256);
  // A fresh model trains on every position it was given (--ctx): Llama's own default of at most
  // 2048 is for loaded configs, whose max_position_embeddings is no request of the user's.
  auto model = std::make_unique<Llama>(c, c.max_position_embeddings);
  check_tokenizer_fits(f, *model);
  return model;
}

std::unique_ptr<Model> construct_architecture(const ModelSpec& f, const std::string& data) {
  std::unique_ptr<Model> model;
  if (!f.model_dir.empty()) {
    check(f.layers == 0 && f.dim == 0 && f.heads == 0 && f.kv_heads == 0 && f.mlp_dim == 0 && f.head_dim == 0 &&
              !f.qk_norm && !f.untied_head && f.vocab == 0 && f.norm.empty() && !f.batchnorm,
          "--model " + f.model_dir +
              " brings its own architecture: drop --layers/--dim/--heads/--kv-heads/--mlp-dim/--head-dim/--qk-norm/"
              "--untied-head/--vocab/--norm/--batchnorm");
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
  check(f.arch == "llama" || (f.kv_heads == 0 && f.mlp_dim == 0 && f.head_dim == 0 && !f.qk_norm && !f.untied_head),
        "--kv-heads/--mlp-dim/--head-dim/--qk-norm/--untied-head apply to --arch llama only");
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

std::unique_ptr<Model> construct_base_model(const ModelSpec& f, const std::string& data) {
  std::unique_ptr<Model> model = construct_architecture(f, data);
  apply_kernel_flags(f, *model, is_chat_data(data, ChatSpec{}));  // (a .jsonl file)
  return model;
}
}  // namespace

void use_fused_attention_for_examples(Model& model, bool examples) {
  CausalLm* lm = as_causal_lm(model);
  if (examples && lm && lm->attention_kernel() == AttentionKernel::Auto) lm->set_attention_kernel(AttentionKernel::Flash);
}

std::unique_ptr<Model> build_model(const ModelSpec& f, const std::string& data, uint64_t seed, bool with_weights,
                                   const LoraSpec& lora, LoraSettings* lora_used, const StorageSpec& storage) {
  std::unique_ptr<Model> model = build_base_model(f, data, seed, with_weights, lora, storage);
  attach_lora(*model, lora, seed, lora_used);
  return model;
}

std::unique_ptr<Model> build_base_model(const ModelSpec& f, const std::string& data, uint64_t seed, bool with_weights,
                                        const LoraSpec& lora, const StorageSpec& storage) {
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

}  // namespace frugal
