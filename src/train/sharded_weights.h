#pragma once
// ZeRO-3's weights: each parameter lives on the rank that owns it (zero_owners); on every other
// rank it is a placeholder (Tensor::placeholder: its shape and compute type, no memory). Before a
// block runs, the executor fetches (nn/layer.h BlockWeights): each of the block's weights is
// broadcast from its owner into a fresh buffer on the other ranks; when the block is done the
// copies are dropped. A weight two users share (the tied wte: block 0 and the LM head) is fetched
// once while either holds it.
#include <vector>

#include "comm/communicator.h"
#include "models/model.h"

namespace frugal {

class ShardedWeights : public BlockWeights {
 public:
  // `params`: the model's parameters (Model::params order), `owners` parallel to them; `compute`: the
  // type the owners' compute copies have (--precision), which is what goes over the wire. A
  // parameter this rank does not own but still holds memory for (a model built whole) is released.
  ShardedWeights(Model& model, const std::vector<Param*>& params, const std::vector<int>& owners, DType compute,
                 Communicator& comm);

  void fetch(int block) override;
  void drop(int block) noexcept override;

  // Seconds spent in fetches' broadcasts since the last call (waiting included), then 0.
  double take_fetch_seconds();

  // After training: every parameter in rank `root`'s model in fp32 (owners send their fp32 values,
  // which the caller has put back); the other ranks keep their placeholders.
  void gather_fp32(int root);

 private:
  // Indices (into params_) of the weights `block` uses; block -1: the LM head's.
  const std::vector<size_t>& used_by(int block) const;
  bool owned(size_t k) const { return owners_[k] == comm_.rank(); }

  std::vector<Param*> params_;
  std::vector<int> owners_;
  Communicator& comm_;
  std::vector<std::vector<size_t>> block_params_;  // per block, then the LM head's last
  std::vector<int> fetched_;  // per parameter: how many fetches hold it now
  double fetch_seconds_ = 0.0;
};

}  // namespace frugal
