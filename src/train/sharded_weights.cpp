#include "train/sharded_weights.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace frugal {

ShardedWeights::ShardedWeights(Model& model, const std::vector<Param*>& params, const std::vector<int>& owners,
                               Communicator& comm)
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
    if (!owned(k) && !value.is_placeholder()) value = Tensor::placeholder(value.shape(), value.dtype());
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
    if (fetched_[k]++ > 0) continue;  // already here for another user (the tied wte)
    Tensor& value = params_[k]->value;
    if (!owned(k)) value = Tensor::empty(value.shape(), value.dtype(), MemCategory::Params);
    if (value.has_data()) comm_.broadcast(value.raw(), static_cast<int64_t>(value.nbytes()), owners_[k]);
  }
  fetch_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double ShardedWeights::take_fetch_seconds() {
  const double s = fetch_seconds_;
  fetch_seconds_ = 0.0;
  return s;
}

void ShardedWeights::drop(int block) {
  for (size_t k : used_by(block)) {
    check(fetched_[k] > 0, "ZeRO-3: " + params_[k]->name + " dropped more often than fetched");
    if (--fetched_[k] > 0 || owned(k)) continue;
    Tensor& value = params_[k]->value;
    value = Tensor::placeholder(value.shape(), value.dtype());
  }
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
