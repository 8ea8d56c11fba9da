#include "train/sharded_weights.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace frugal {

ShardedWeights::ShardedWeights(Model& model, const std::vector<Param*>& params, const std::vector<int>& owners,
                               DType compute, Communicator& comm)
    : params_(params), owners_(owners), comm_(comm), fetched_(params.size(), 0) {
  check(owners_.size() == params_.size(), "ZeRO-3: ownership list does not match the parameters");
  const auto index_of = [&](const Param* p) {
    const auto it = std::find(params_.begin(), params_.end(), p);
    check(it != params_.end(), "ZeRO-3: a block uses a parameter the model does not list");
    return static_cast<size_t>(it - params_.begin());
  };
  for (const auto& block : model.blocks()) {
    std::vector<Param*> used;
    block->collect_params(used);
    block_params_.emplace_back();
    for (const Param* p : used) block_params_.back().push_back(index_of(p));
  }
  block_params_.emplace_back();
  if (const TiedLmHead* head = model.lm_head()) block_params_.back().push_back(index_of(head->weight()));
  for (size_t k = 0; k < params_.size(); ++k) {
    Tensor& value = params_[k]->value;
    // An owner must hold its weight (a rank built for other owners would wait in a broadcast alone).
    check(!owned(k) || !value.is_placeholder(), "ZeRO-3: rank " + std::to_string(comm_.rank()) + " owns " +
                                                    params_[k]->name + " but was built without it");
    if (!owned(k)) value = Tensor::placeholder(value.shape(), compute);
  }
}

const std::vector<size_t>& ShardedWeights::used_by(int block) const {
  check(block >= -1 && block + 1 < static_cast<int>(block_params_.size()), "ZeRO-3: block index out of range");
  return block >= 0 ? block_params_[static_cast<size_t>(block)] : block_params_.back();
}

// Every rank runs the same schedule, so every rank comes here for the same blocks in the same order
// and the broadcasts pair up: the owner sends, the others receive into a fresh buffer.
void ShardedWeights::fetch(int block) {
  const auto start = std::chrono::steady_clock::now();
  for (size_t k : used_by(block)) {
    if (fetched_[k] > 0) {  // already here for another user (the tied wte)
      ++fetched_[k];
      continue;
    }
    Tensor& value = params_[k]->value;
    if (!owned(k)) value = Tensor::empty(value.shape(), value.dtype(), MemCategory::Params);
    if (value.has_data()) comm_.broadcast(value.raw(), static_cast<int64_t>(value.nbytes()), owners_[k]);
    fetched_[k] = 1;  // (counted once it is here: a failed fetch leaves nothing to drop)
  }
  fetch_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs in WeightsHeld's destructor (train/executor.cpp), also while an error unwinds: never throws.
void ShardedWeights::drop(int block) noexcept {
  if (block < -1 || block + 1 >= static_cast<int>(block_params_.size())) return;
  for (size_t k : block >= 0 ? block_params_[static_cast<size_t>(block)] : block_params_.back()) {
    if (fetched_[k] == 0 || --fetched_[k] > 0 || owned(k)) continue;
    Tensor& value = params_[k]->value;
    value = Tensor::placeholder(value.shape(), value.dtype());
  }
}

double ShardedWeights::take_fetch_seconds() {
  const double s = fetch_seconds_;
  fetch_seconds_ = 0.0;
  return s;
}

void ShardedWeights::gather_fp32(int root) {
  for (size_t k = 0; k < params_.size(); ++k) {
    Tensor& value = params_[k]->value;
    if (owned(k)) {
      check(value.dtype() == DType::F32, "ZeRO-3: " + params_[k]->name + " is not fp32 after training");
      if (comm_.rank() != root && value.has_data()) comm_.send(value.raw(), static_cast<int64_t>(value.nbytes()), root);
    } else if (comm_.rank() == root) {
      value = Tensor::empty(value.shape(), DType::F32, MemCategory::Params);
      if (value.has_data()) comm_.receive(value.raw(), static_cast<int64_t>(value.nbytes()), owners_[k]);
    }
  }
}

}  // namespace frugal
