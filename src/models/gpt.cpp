#include "models/gpt.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "models/config_json.h"
#include "nn/layernorm.h"
#include "nn/half_storage.h"
#include "nn/linear.h"
#include "nn/transformer_block.h"

namespace frugal {

nlohmann::json GptConfig::to_json() const {
  return {{"model_type", "gpt2"},          {"architectures", {"GPT2LMHeadModel"}},
          {"n_layer", n_layer},            {"n_head", n_head},
          {"n_embd", n_embd},              {"n_positions", n_positions},
          {"n_ctx", n_positions},          {"vocab_size", vocab_size},
          {"layer_norm_epsilon", layer_norm_epsilon}, {"activation_function", "gelu_new"},
          {"tie_word_embeddings", true},   {"embd_pdrop", embd_pdrop},
          {"attn_pdrop", attn_pdrop},      {"resid_pdrop", resid_pdrop}};
}

GptConfig GptConfig::from_json(const nlohmann::json& j) {
  check(j.is_object(), "config.json: expected a JSON object");
  GptConfig c;
  c.n_layer = require_int(j, "n_layer");
  c.n_head = require_int(j, "n_head");
  c.n_embd = require_int(j, "n_embd");
  c.n_positions = require_int(j, "n_positions");
  c.vocab_size = require_int(j, "vocab_size");
  if (j.contains("layer_norm_epsilon")) {
    check(j["layer_norm_epsilon"].is_number(), "config.json: 'layer_norm_epsilon' must be a number");
    c.layer_norm_epsilon = j["layer_norm_epsilon"].get<double>();
  }
  for (auto [key, field] : {std::pair{"embd_pdrop", &c.embd_pdrop}, std::pair{"attn_pdrop", &c.attn_pdrop},
                            std::pair{"resid_pdrop", &c.resid_pdrop}})
    if (j.contains(key)) {
      check(j[key].is_number(), std::string("config.json: '") + key + "' must be a number");
      *field = j[key].get<double>();
    }
  if (j.contains("activation_function")) {
    const auto act = j["activation_function"].get<std::string>();
    check(act == "gelu_new" || act == "gelu_pytorch_tanh",
          "config.json: activation_function '" + act + "' is not GPT-2's tanh GELU");
  }
  c.validate();
  return c;
}

void GptConfig::validate() const {
  auto positive = [](int64_t v, const char* name, int64_t max) {
    check(v > 0 && v <= max, std::string("GPT config: ") + name + " = " + std::to_string(v) + " is out of range (1.." +
                                 std::to_string(max) + ")");
  };
  positive(n_layer, "n_layer", 1024);
  positive(n_head, "n_head", 1024);
  positive(n_embd, "n_embd", 1 << 16);
  positive(n_positions, "n_positions", 1 << 20);
  positive(vocab_size, "vocab_size", 1 << 24);
  check(n_embd % n_head == 0, "GPT config: n_embd " + std::to_string(n_embd) + " is not divisible by n_head " +
                                  std::to_string(n_head));
  check(layer_norm_epsilon > 0, "GPT config: layer_norm_epsilon must be positive");
  for (auto [name, p] : {std::pair{"embd_pdrop", embd_pdrop}, std::pair{"attn_pdrop", attn_pdrop},
                         std::pair{"resid_pdrop", resid_pdrop}})
    check(p >= 0 && p < 1, std::string("GPT config: ") + name + " = " + std::to_string(p) + " is not in [0, 1)");
}

Gpt::Gpt(const GptConfig& config, int64_t context) : config_(config) {
  config_.validate();
  set_context(context < 0 ? config.n_positions : context);
  const float eps = static_cast<float>(config.layer_norm_epsilon);
  auto embedding = std::make_unique<Embedding>(config.vocab_size, config.n_positions, config.n_embd);
  embedding_ = embedding.get();
  blocks_.push_back(std::move(embedding));
  for (int64_t i = 0; i < config.n_layer; ++i)
    blocks_.push_back(std::make_unique<TransformerBlock>(static_cast<int>(i), config.n_embd, config.n_head, eps));
  blocks_.push_back(std::make_unique<LayerNorm>("ln_f", config.n_embd, eps));
  // logits = h wte^T, never held whole in training (nn/lm_head.h)
  head_ = std::make_unique<TiedLmHead>(&embedding_->wte(), config.n_embd, config.vocab_size);
  set_dropout(config.embd_pdrop, config.attn_pdrop, config.resid_pdrop);
}

void Gpt::set_dropout(double embd, double attn, double resid) {
  for (double p : {embd, attn, resid})
    check(p >= 0 && p < 1, "dropout probabilities must be in [0, 1), got " + std::to_string(p));
  embedding_->set_dropout(static_cast<float>(embd));
  for (int64_t i = 0; i < config_.n_layer; ++i) {
    auto& block = static_cast<TransformerBlock&>(*blocks_[static_cast<size_t>(i) + 1]);
    block.set_residual_dropout(static_cast<float>(resid));
    block.set_attention_dropout(static_cast<float>(attn));
  }
  dropout_ = {{"embd", embd}, {"attn", attn}, {"resid", resid}};
}

nlohmann::json Gpt::dropout() const { return dropout_; }

std::vector<std::pair<std::string, Linear*>> Gpt::adaptable_linears() const {
  std::vector<std::pair<std::string, Linear*>> out;
  for (int64_t i = 0; i < config_.n_layer; ++i) {
    auto& block = static_cast<TransformerBlock&>(*blocks_[static_cast<size_t>(i) + 1]);
    const std::string h = "h." + std::to_string(i) + ".";
    out.emplace_back(h + "attn.c_attn", &block.c_attn());
    out.emplace_back(h + "attn.c_proj", &block.attn_proj());
    out.emplace_back(h + "mlp.c_fc", &block.c_fc());
    out.emplace_back(h + "mlp.c_proj", &block.mlp_proj());
  }
  return out;
}

KvCache Gpt::make_kv_cache(int64_t capacity) const {
  check(capacity >= 1 && capacity <= config_.n_positions, "kv cache: capacity " + std::to_string(capacity) +
                                                              " must be in 1..n_positions (" +
                                                              std::to_string(config_.n_positions) + ")");
  return KvCache(config_.n_layer, config_.n_head, capacity, config_.n_embd / config_.n_head);
}

Tensor Gpt::forward_cached(const Tensor& tokens, KvCache& cache, const RunContext& rc) {
  check_cached_input(tokens, cache, rc);
  const int64_t T = tokens.dim(1);
  Tensor h;  // (1, T, D)
  {
    Saved discard;
    h = embedding_->forward_at(tokens, cache.length(), discard);
  }
  for (int64_t l = 0; l < config_.n_layer; ++l)
    h = static_cast<TransformerBlock&>(*blocks_[static_cast<size_t>(l) + 1]).forward_cached(h, cache, l, rc);
  cache.advance(T);
  return last_logits(h, rc);
}

std::vector<CausalSelfAttention*> Gpt::attentions() const {
  std::vector<CausalSelfAttention*> out;
  for (int64_t i = 0; i < config_.n_layer; ++i)
    out.push_back(&static_cast<TransformerBlock&>(*blocks_[static_cast<size_t>(i) + 1]).attention());
  return out;
}

void Gpt::init_weights(uint64_t seed) {
  const std::vector<Param*> ps = params();
  for (size_t k = 0; k < ps.size(); ++k) init_param(k, ps[k]->value, seed);
}

void Gpt::init_param(size_t index, const Tensor& into, uint64_t seed) const {
  // GPT-2's initialisation: N(0, 0.02) for weights and embeddings, residual projections scaled by
  // 1/sqrt(2 n_layer), zero biases, unit LayerNorm gains. Each parameter draws its own stream.
  const float residual_std = 0.02f / std::sqrt(2.0f * static_cast<float>(config_.n_layer));
  const std::string& n = params().at(index)->name;
  const bool is_bias = n.ends_with(".bias");
  const bool is_ln = n.find(".ln_") != std::string::npos || n.starts_with("ln_f.");
  if (is_ln && !is_bias) {
    into.fill(1.0f);
  } else if (is_bias) {
    into.fill_zero();
  } else {
    init_normal(into, seed, index + 1, n.ends_with("c_proj.weight") ? residual_std : 0.02f);
  }
}

}  // namespace frugal
