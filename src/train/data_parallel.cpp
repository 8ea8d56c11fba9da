#include "train/data_parallel.h"

#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/half.h"
#include "kernels/convert.h"
#include "train/batch.h"

namespace frugal {

Batch rank_shard(const Batch& global, const Communicator& comm) {
  const int n = comm.size();
  if (n == 1) return global;
  check(global.size() % n == 0, "the optimizer batch of " + std::to_string(global.size()) +
                                    " samples does not split evenly over " + std::to_string(n) + " ranks");
  const int64_t local = global.size() / n;
  return global.slice(comm.rank() * local, (comm.rank() + 1) * local);
}

AccumulatedPass accumulate_data_parallel(Model& model, const Batch& global, int64_t accum, RunContext rc,
                                         const Schedule* schedule, Communicator& comm, bool allreduce_gradients) {
  const Batch shard = rank_shard(global, comm);
  int64_t items = count_items(model, shard);
  comm.allreduce_sum(&items, 1);  // before the first micro-batch: every rank divides by the global count
  rc.sample_offset = static_cast<uint64_t>(comm.rank() * shard.size());  // dropout keyed by global position
  AccumulatedPass pass = accumulate_gradients(model, shard, accum, rc, schedule, std::max<int64_t>(items, 1));
  pass.items = items;
  if (comm.size() == 1) return pass;
  const auto start = std::chrono::steady_clock::now();
  for (Param* p : model.params()) {
    if (!p->trainable || !allreduce_gradients) continue;
    const Tensor& g = p->ensure_grad();  // every rank reduces the same tensors, used on its shard or not
    if (g.has_data()) comm.allreduce_sum(g.f32(), g.numel());
  }
  comm.allreduce_sum(&pass.loss, 1);  // each rank's share of the global mean
  pass.communication_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return pass;
}

void check_same_parameters(const std::vector<Param*>& params, Communicator& comm) {
  if (comm.size() == 1) return;
  // A fingerprint of this rank's weights: a position-weighted sum and the sum of squares of every
  // value (half ones widened one by one: no buffer). Ranks with different weights get different
  // fingerprints (not a bitwise comparison).
  double mine[2] = {0, 0};
  for (const Param* p : params) {
    const Tensor& t = p->value;
    if (!t.has_data() || (t.dtype() != DType::F32 && !is_half(t.dtype()))) continue;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double v = t.dtype() == DType::F32 ? t.f32()[i]
                       : t.dtype() == DType::F16 ? f16_to_f32(t.u16()[i]) : bf16_to_f32(t.u16()[i]);
      mine[0] += v * static_cast<double>(i % 7 + 1);
      mine[1] += v * v;
    }
  }
  double total[2] = {mine[0], mine[1]};
  comm.allreduce_sum(total, 2);
  for (int k = 0; k < 2; ++k)
    check(std::fabs(total[k] - comm.size() * mine[k]) <= 1e-9 * (std::fabs(total[k]) + 1e-30),
          "rank " + std::to_string(comm.rank()) + " starts from different weights than the others "
          "(every rank must build the model from the same --seed or load the same --model)");
}

std::vector<int> zero_owners(const std::vector<Param*>& params, int ranks) {
  int64_t total = 0;
  for (const Param* p : params)
    if (p->trainable) total += p->value.numel();
  std::vector<int> owners(params.size(), 0);
  int64_t before = 0;
  for (size_t k = 0; k < params.size(); ++k) {
    if (!params[k]->trainable) continue;
    const int64_t mid = before + params[k]->value.numel() / 2;  // the parameter goes where its middle falls
    owners[k] = static_cast<int>(std::min<int64_t>(ranks - 1, total > 0 ? mid * ranks / total : 0));
    before += params[k]->value.numel();
  }
  return owners;
}

void broadcast_from_owners(const std::vector<Param*>& params, const std::vector<int>& owners, Communicator& comm,
                           bool frozen_too) {
  for (size_t k = 0; k < params.size(); ++k)
    if ((params[k]->trainable || frozen_too) && params[k]->value.has_data())
      comm.broadcast(params[k]->value.raw(), static_cast<int64_t>(params[k]->value.nbytes()), owners[k]);
}

}  // namespace frugal
