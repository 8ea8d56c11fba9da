#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/ledger.h"
#include "core/units.h"
#include "nn/half_storage.h"

namespace frugal {

int64_t Schedule::forward_calls() const {
  return std::count_if(ops.begin(), ops.end(), [](const ScheduleOp& op) { return op.kind == ScheduleOp::Kind::Forward; });
}

namespace {

using Kind = ScheduleOp::Kind;

// Appends schedules piece by piece; every piece starts with block s's input stored.
class Builder {
 public:
  explicit Builder(int blocks) : n_(blocks) {}

  // Forward s..t keeping everything, then backward t..s. Inputs s+1..t live on inside the saved
  // tensors where needed; the last output goes to the loss, or is dropped (recomputed copy of a
  // checkpoint whose part of the chain is already done).
  void all_saved(int s, int t) {
    for (int i = s; i <= t; ++i) {
      ops_.push_back({Kind::Forward, i, true});
      if (i > s) ops_.push_back({Kind::Drop, i, false});
    }
    if (t == n_ - 1) ops_.push_back({Kind::Loss, t, false});
    else ops_.push_back({Kind::Drop, t + 1, false});
    for (int i = t; i >= s; --i) ops_.push_back({Kind::Backward, i, false});
  }

  // Forward s..j-1 without saving; x_j stays stored.
  void advance(int s, int j) {
    for (int i = s; i < j; ++i) {
      ops_.push_back({Kind::Forward, i, false});
      if (i > s) ops_.push_back({Kind::Drop, i, false});
    }
  }

  void drop(int i) { ops_.push_back({Kind::Drop, i, false}); }
  void forward_saved(int i) { ops_.push_back({Kind::Forward, i, true}); }
  void backward(int i) { ops_.push_back({Kind::Backward, i, false}); }

  Schedule finish(const std::string& strategy) {
    drop(0);
    return {strategy, n_, std::move(ops_)};
  }

 private:
  int n_;
  std::vector<ScheduleOp> ops_;
};

void check_blocks(int blocks) { check(blocks >= 1, "a schedule needs at least one block"); }

}  // namespace

Schedule store_all_schedule(int n) {
  check_blocks(n);
  Builder b(n);
  b.all_saved(0, n - 1);
  return b.finish("store-all");
}

Schedule memory_poor_schedule(int n) {
  check_blocks(n);
  Builder b(n);
  // Only the chain's input is kept: before the backward of block t, blocks 0..t-1 run again.
  for (int t = n - 1; t >= 0; --t) {
    b.advance(0, t);
    b.all_saved(t, t);
    if (t > 0) b.drop(t);
  }
  return b.finish("memory-poor");
}

Schedule sqrt_schedule(int n) {
  check_blocks(n);
  const int length = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
  std::vector<int> starts;  // segment boundaries: inputs kept as checkpoints
  for (int s = 0; s < n; s += length) starts.push_back(s);
  Builder b(n);
  for (size_t k = 0; k + 1 < starts.size(); ++k) b.advance(starts[k], starts[k + 1]);  // keeps every boundary
  for (size_t k = starts.size(); k-- > 0;) {
    const int end = k + 1 < starts.size() ? starts[k + 1] - 1 : n - 1;
    b.all_saved(starts[k], end);  // the last segment runs once; the others are recomputed with saving
    if (k > 0) b.drop(starts[k]);
  }
  return b.finish("sqrt");
}

BlockCosts measure_block_costs(Model& model, int64_t micro_batch, int64_t batch_size, const RunContext& run) {
  MemoryLedger ledger(/*measure_only=*/true);
  LedgerScope scope(ledger);
  const auto& blocks = model.blocks();
  const auto act = [&ledger] { return static_cast<int64_t>(ledger.live()[MemCategory::Activations]); };
  const auto peak = [&ledger] { return static_cast<int64_t>(ledger.peak()[MemCategory::Activations]); };
  BlockCosts c;
  {
    Batch whole = allocate_batch(model, batch_size);  // the trainer holds the whole optimizer batch
    c.baseline = act();
  }
  Batch micro = allocate_batch(model, micro_batch);
  RunContext rc = pass_context(run);  // the executor's pass: the run's precision and a half cache
  rc.recompute = true;                // nothing runs anyway; never touch running statistics
  std::vector<Saved> saved(blocks.size());
  Tensor x = micro.inputs;
  for (size_t i = 0; i < blocks.size(); ++i) {
    Tensor y;
    {
      ledger.reset_peaks();
      const int64_t before = act();
      Saved scratch;
      rc.block_index = static_cast<int>(i);
      y = forward_child(*blocks[i], x, scratch, rc);
      scratch.clear();
      c.peak_nosave.push_back(peak() - before);
    }
    y = Tensor();
    ledger.reset_peaks();
    const int64_t before = act();
    y = forward_child(*blocks[i], x, saved[i], rc);
    c.peak_save.push_back(peak() - before);
    c.keep.push_back(act() - before);
    c.output.push_back(static_cast<int64_t>(y.nbytes()));
    x = y;
  }
  return c;
}

namespace {

constexpr int kMaxOptimalBlocks = 512;  // keeps the table (n^2 x slots) within a few hundred MB

// rotor-style dynamic programme over (first block, last block, memory slots). Memory model: a
// forward adds its block's peak on top of what is live; a kept forward leaves `keep` bytes until
// the block's backward; a stored input costs its bytes until dropped. Backward allocates no
// activations (its tensors are workspace), so peaks happen in forwards.
class OptimalPlanner {
 public:
  OptimalPlanner(const BlockCosts& c, int64_t slot_bytes, int slots)
      : c_(c), n_(static_cast<int>(c.output.size())), slot_(slot_bytes), slots_(slots),
        table_(static_cast<size_t>(n_) * n_ * (slots + 1), kUnknown), choice_(table_.size(), 0) {}

  static constexpr int64_t kInfinite = std::numeric_limits<int64_t>::max() / 4;

  // Fewest forwards to run the backward of blocks s..t with x_s stored, in m slots.
  int64_t cost(int s, int t, int m) {
    if (m < 0) return kInfinite;
    int64_t& memo = table_[index(s, t, m)];
    if (memo != kUnknown) return memo;
    int64_t best = all_saved_peak(s, t) <= m ? t - s + 1 : kInfinite;
    int best_choice = 0;
    if (s < t && slots(c_.peak_save[s]) <= m) {  // keep block s's tensors, then solve s+1..t in what is left
      const int64_t rest = cost(s + 1, t, m - slots(c_.keep[s]));
      if (rest < kInfinite && 1 + rest < best) {
        best = 1 + rest;
        best_choice = kSaveFirst;
      }
    }
    for (int j = s + 1; j <= t; ++j) {  // keep x_j as a checkpoint, run the right part, then the left
      const int a = slots(c_.output[j - 1]);
      if (advance_peak(s, j) > m || a > m) continue;
      const int64_t right = cost(j, t, m - a);
      if (right >= kInfinite) continue;
      const int64_t left = cost(s, j - 1, m);
      if (left >= kInfinite) continue;
      if ((j - s) + right + left < best) {
        best = (j - s) + right + left;
        best_choice = j;
      }
    }
    choice_[index(s, t, m)] = best_choice;
    return memo = best;
  }

  // Peak bytes above x_s of the plan cost(s, t, m) chose, in exact bytes (the table works in slots).
  int64_t exact_peak(int s, int t, int m) {
    cost(s, t, m);
    const int j = choice_[index(s, t, m)];
    if (j == 0) return all_saved_bytes(s, t);
    if (j == kSaveFirst) return std::max(c_.peak_save[s], c_.keep[s] + exact_peak(s + 1, t, m - slots(c_.keep[s])));
    const int64_t a = c_.output[j - 1];
    return std::max({advance_bytes(s, j), a + exact_peak(j, t, m - slots(a)), exact_peak(s, j - 1, m)});
  }

  void emit(Builder& b, int s, int t, int m) {
    cost(s, t, m);
    const int j = choice_[index(s, t, m)];
    if (j == 0) {
      b.all_saved(s, t);
      return;
    }
    if (j == kSaveFirst) {
      b.forward_saved(s);
      emit(b, s + 1, t, m - slots(c_.keep[s]));
      b.drop(s + 1);
      b.backward(s);
      return;
    }
    b.advance(s, j);
    emit(b, j, t, m - slots(c_.output[j - 1]));
    b.drop(j);
    emit(b, s, j - 1, m);
  }

 private:
  static constexpr int64_t kUnknown = -1;
  static constexpr int kSaveFirst = -1;  // choice: Forward(s, save), then the rest
  size_t index(int s, int t, int m) const {
    return (static_cast<size_t>(s) * n_ + t) * (slots_ + 1) + static_cast<size_t>(m);
  }
  // Rounded down: the table may be optimistic by a slot; optimal_schedule checks exact bytes.
  // Capped just above the table's range so huge blocks cannot overflow an int.
  int slots(int64_t bytes) const { return static_cast<int>(std::min<int64_t>(bytes / slot_, slots_ + 1)); }
  // Forward s..t saving everything: the largest prefix of kept bytes plus a block's own peak.
  int64_t all_saved_bytes(int s, int t) const {
    int64_t kept = 0, worst = 0;
    for (int i = s; i <= t; ++i) {
      worst = std::max(worst, kept + c_.peak_save[i]);
      kept += c_.keep[i];
    }
    return worst;
  }
  // Forward s..j-1 without saving: a block's input (unless it is the stored x_s) plus its peak.
  int64_t advance_bytes(int s, int j) const {
    int64_t worst = 0;
    for (int i = s; i < j; ++i) worst = std::max(worst, (i > s ? c_.output[i - 1] : 0) + c_.peak_nosave[i]);
    return worst;
  }
  int all_saved_peak(int s, int t) const { return slots(all_saved_bytes(s, t)); }
  int advance_peak(int s, int j) const { return slots(advance_bytes(s, j)); }

  const BlockCosts& c_;
  int n_;
  int64_t slot_;
  int slots_;
  std::vector<int64_t> table_;
  std::vector<int> choice_;
};

}  // namespace

Schedule optimal_schedule(const BlockCosts& costs, int64_t budget_bytes) {
  const int n = static_cast<int>(costs.output.size());
  check_blocks(n);
  check(n <= kMaxOptimalBlocks, "--checkpoint optimal plans chains of up to " + std::to_string(kMaxOptimalBlocks) +
                                    " blocks (this one has " + std::to_string(n) + "); use sqrt for deeper ones");
  // Enough slots for a fine plan, few enough that n^3 * slots stays cheap.
  const int slots = static_cast<int>(std::clamp<int64_t>(200000000 / (int64_t{n} * n * n), 16, 400));
  auto solve = [&](int64_t budget, Schedule* out) {
    const int64_t available = budget - costs.baseline;
    if (available <= 0) return false;
    const int64_t slot = std::max<int64_t>(1, (available + slots - 1) / slots);
    OptimalPlanner planner(costs, slot, slots);
    // Slots round costs down, so a plan may overshoot by a little: take the largest slot count
    // whose plan fits in exact bytes.
    for (int m = static_cast<int>(available / slot); m >= 0; --m) {
      if (planner.cost(0, n - 1, m) >= OptimalPlanner::kInfinite) return false;
      if (planner.exact_peak(0, n - 1, m) > available) continue;
      if (out) {
        Builder b(n);
        planner.emit(b, 0, n - 1, m);
        *out = b.finish("optimal");
      }
      return true;
    }
    return false;
  };
  Schedule schedule;
  if (solve(budget_bytes, &schedule)) return schedule;
  // The smallest budget that works: bisect between nothing and what store-all needs.
  int64_t lo = costs.baseline, hi = costs.baseline;
  for (size_t i = 0; i < costs.keep.size(); ++i) hi += costs.keep[i] + costs.peak_save[i];
  while (!solve(hi, nullptr)) hi *= 2;
  while (hi - lo > std::max<int64_t>(1024, hi / 1000)) {
    const int64_t mid = lo + (hi - lo) / 2;
    (solve(mid, nullptr) ? hi : lo) = mid;
  }
  throw Error("--activation-budget " + format_bytes(static_cast<double>(budget_bytes)) +
              " is too small for this model and micro-batch: the smallest budget that works is about " +
              format_bytes(static_cast<double>(hi)) + " (" + std::to_string(hi) + " bytes)");
}

Schedule make_schedule(const std::string& strategy, Model& model, int64_t micro_batch, int64_t batch_size,
                       int64_t activation_budget, const RunContext& rc) {
  const int n = static_cast<int>(model.blocks().size());
  check(strategy == "optimal" || activation_budget <= 0, "--activation-budget applies to --checkpoint optimal only");
  if (strategy == "store-all") return store_all_schedule(n);
  if (strategy == "memory-poor") return memory_poor_schedule(n);
  if (strategy == "sqrt") return sqrt_schedule(n);
  check(strategy == "optimal", "unknown --checkpoint strategy '" + strategy +
                                   "' (expected store-all, memory-poor, sqrt or optimal)");
  check(activation_budget > 0, "--checkpoint optimal needs --activation-budget SIZE (e.g. 64MiB)");
  return optimal_schedule(measure_block_costs(model, micro_batch, batch_size, rc), activation_budget);
}

}  // namespace frugal
