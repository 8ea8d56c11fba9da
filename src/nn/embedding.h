#pragma once
// Input embedding: token ids (B, T) -> wte[id] + wpe[t], (B, T, D) (GPT-2); or wte[id] alone, for
// models whose positions enter elsewhere (Llama's rotary embedding).
#include "nn/dropout.h"
#include "nn/layer.h"

namespace frugal {

class Embedding : public Layer {
 public:
  Embedding(int64_t vocab, int64_t positions, int64_t dim);  // params "wte.weight", "wpe.weight"
  // The token table alone, named `weight_name` (Llama: "model.embed_tokens.weight"): no positions.
  Embedding(const std::string& weight_name, int64_t vocab, int64_t dim);
  Tensor forward(const Tensor& tokens, Saved& saved, const RunContext& rc) override;  // saves tokens
  // The same for tokens at positions first_position .. first_position+T-1 (generation with a KV
  // cache feeds the positions after the cached ones): wte[id] + wpe[first_position + t].
  Tensor forward_at(const Tensor& tokens, int64_t first_position, Saved& saved);
  // The same for packed examples: wte[id] + wpe[positions[b, t]] (RunContext::positions).
  Tensor forward_packed(const Tensor& tokens, const Tensor& positions, Saved& saved);
  Tensor backward(const Tensor& dy, Saved& saved, const RunContext& rc) override;     // returns undefined
  void collect_params(std::vector<Param*>& out) override;
  std::string kind() const override { return "embedding"; }
  Param& wte() { return wte_; }

  // Dropout after the embedding sum (GPT-2's embd_pdrop) while training.
  void set_dropout(float p) { dropout_.p = p; }
  float dropout() const { return dropout_.p; }

 private:
  bool has_positions() const { return positions_ > 0; }

  void check_ids(const Tensor& tokens) const;  // every id in 0..vocab-1, else an Error naming it
  int64_t vocab_, positions_, dim_;  // positions_ 0: no wpe
  DropoutSpec dropout_{0.0f, DropoutSite::Embedding};
  Param wte_, wpe_;
};

}  // namespace frugal
