#include "models/llama.h"

#include <algorithm>

#include "core/error.h"
#include "nn/llama_block.h"
#include "nn/rmsnorm.h"

namespace frugal {

namespace {
// A fresh model trains on at most this many positions unless asked (--ctx): Llama 3's 131,072
// would make the default sample absurdly long.
constexpr int64_t kDefaultContext = 2048;
}  // namespace

Llama::Llama(const LlamaConfig& config, int64_t context) : config_(config) {
  config_.validate();
  set_context(context < 0 ? std::min(config_.max_position_embeddings, kDefaultContext) : context);
  const int64_t D = config_.hidden_size, V = config_.vocab_size;
  auto embedding = std::make_unique<Embedding>("model.embed_tokens.weight", V, D);
  embedding_ = embedding.get();
  blocks_.push_back(std::move(embedding));
  LlamaBlockShape shape{.dim = D, .heads = config_.num_attention_heads, .kv_heads = config_.num_key_value_heads,
                        .intermediate = config_.intermediate_size, .head_dim = config_.head_dim(),
                        .eps = static_cast<float>(config_.rms_norm_eps), .rope_frequencies = config_.rope_frequencies(),
                        .qkv_bias = config_.qkv_bias(), .o_bias = config_.o_bias(), .mlp_bias = config_.mlp_bias,
                        .qk_norm = config_.qk_norm()};
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i)
    blocks_.push_back(std::make_unique<LlamaBlock>(static_cast<int>(i), shape));
  blocks_.push_back(std::make_unique<RmsNorm>("model.norm", D, shape.eps));
  Param* head_weight = &embedding_->wte();
  if (!config_.tie_word_embeddings) {
    lm_head_weight_ = std::make_unique<Param>(
        Param{"lm_head.weight", Tensor::zeros({V, D}, DType::F32, MemCategory::Params), {}, true});
    head_weight = lm_head_weight_.get();
  }
  head_ = std::make_unique<TiedLmHead>(head_weight, D, V);
}

LlamaBlock& Llama::block(int64_t layer) const { return static_cast<LlamaBlock&>(*blocks_[static_cast<size_t>(layer) + 1]); }

void Llama::collect_head_params(std::vector<Param*>& out) const {
  if (lm_head_weight_) out.push_back(lm_head_weight_.get());
}

std::vector<std::pair<std::string, Linear*>> Llama::adaptable_linears() const {
  std::vector<std::pair<std::string, Linear*>> out;
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i)
    for (const auto& [name, linear] : block(i).linears())
      out.emplace_back("model.layers." + std::to_string(i) + "." + name, linear);
  return out;
}

std::vector<CausalSelfAttention*> Llama::attentions() const {
  std::vector<CausalSelfAttention*> out;
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) out.push_back(&block(i).attention().attention());
  return out;
}

KvCache Llama::make_kv_cache(int64_t capacity) const {
  check(capacity >= 1 && capacity <= config_.max_position_embeddings,
        "kv cache: capacity " + std::to_string(capacity) + " must be in 1..max_position_embeddings (" +
            std::to_string(config_.max_position_embeddings) + ")");
  return KvCache(config_.num_hidden_layers, config_.num_key_value_heads, capacity, config_.head_dim());
}

Tensor Llama::forward_cached(const Tensor& tokens, KvCache& cache, const RunContext& rc) {
  check_cached_input(tokens, cache, rc);  // (the cache holds at most max_position_embeddings positions)
  Tensor h;  // (1, T, D)
  {
    Saved discard;
    h = embedding_->forward_at(tokens, cache.length(), discard);
  }
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) h = block(l).forward_cached(h, cache, l, rc);
  cache.advance(tokens.dim(1));
  return last_logits(h, rc);
}

void Llama::init_weights(uint64_t seed) {
  const std::vector<Param*> ps = params();
  for (size_t k = 0; k < ps.size(); ++k) init_param(k, ps[k]->value, seed);
}

void Llama::init_param(size_t index, const Tensor& into, uint64_t seed) const {
  // Hugging Face's _init_weights: N(0, initializer_range = 0.02) for linear weights and the
  // embedding, zero biases, unit RMSNorm gains. Each parameter draws its own stream.
  const std::string& n = params().at(index)->name;
  if (n.ends_with("norm.weight")) into.fill(1.0f);
  else if (n.ends_with(".bias")) into.fill_zero();
  else init_normal(into, seed, index + 1, 0.02f);
}

}  // namespace frugal
