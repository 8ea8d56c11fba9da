#include "models/causal_lm.h"

#include "core/error.h"
#include "nn/half_storage.h"

namespace frugal {

void CausalLm::set_context(int64_t t) {
  check(t > 0 && t <= max_positions(), "context length " + std::to_string(t) + " must be in 1..n_positions (" +
                                           std::to_string(max_positions()) + ")");
  context_ = t;
}

void CausalLm::set_attention_kernel(AttentionKernel kernel) {
  for (CausalSelfAttention* a : attentions()) a->set_kernel(kernel);
}

void CausalLm::set_attention_tile(int64_t tile) {
  for (CausalSelfAttention* a : attentions()) a->set_tile(tile);
}

AttentionKernel CausalLm::attention_kernel() const { return attentions().at(0)->kernel(); }

bool CausalLm::uses_fused_attention() const {
  return attentions().at(0)->kernel_for(context_, DType::F32) == AttentionKernel::Flash;
}

void CausalLm::set_dropout(double embd, double attn, double resid) {
  check(embd == 0 && attn == 0 && resid == 0, "dropout (--dropout/--embd-dropout/--attn-dropout/--resid-dropout) "
                                              "applies to GPT models only, not " + arch());
}

nlohmann::json CausalLm::dropout() const { return {{"embd", 0.0}, {"attn", 0.0}, {"resid", 0.0}}; }

nlohmann::json CausalLm::kernels(int64_t micro_batch) const {
  const int64_t rows = head_->chunk_rows_for(micro_batch * context_);
  nlohmann::json j{{"lm_head",
                    {{"kernel", "fused with cross-entropy"}, {"chunk_rows", rows},
                     {"logits_scratch_bytes", rows * vocab_size() * 4}}}};
  const CausalSelfAttention& attention = *attentions().at(0);
  const int64_t bht = micro_batch * attention.heads() * context_;
  if (attention.kernel_for(context_, DType::F32) == AttentionKernel::Flash)
    j["attention"] = {{"kernel", "fused (flash)"}, {"tile", attention.tile()}, {"lse_per_layer_bytes", bht * 4}};
  else
    j["attention"] = {{"kernel", "materialising"}, {"probabilities_fp32_per_layer_bytes", bht * context_ * 4}};
  return j;
}

void CausalLm::check_cached_input(const Tensor& tokens, const KvCache& cache, const RunContext& rc) const {
  check(tokens.ndim() == 2 && tokens.dim(0) == 1 && tokens.dim(1) >= 1,
        "generate: expected token ids (1, T) with T >= 1, got " + tokens.shape().str());
  check(rc.precision == DType::F32, "generate: the kv cache runs with fp32 activations");
  check(cache.layers() == layers(), "kv cache: made for another model");
}

Tensor CausalLm::last_logits(const Tensor& h, const RunContext& rc) {
  // Only the last position's logits are asked for: the final norm and the head run on its row alone.
  const int64_t T = h.dim(1), D = h.dim(2);
  const Tensor last = h.view({T, D}).slice_rows(T - 1, T);  // (1, D)
  Saved discard;
  return head_->logits(forward_child(*blocks_.back(), last, discard, rc));  // (1, V)
}

CausalLm* as_causal_lm(Model& model) { return dynamic_cast<CausalLm*>(&model); }
const CausalLm* as_causal_lm(const Model& model) { return dynamic_cast<const CausalLm*>(&model); }

}  // namespace frugal
