#pragma once
// Activation checkpointing as schedules over the chain of blocks. A schedule is a list of
// operations; one executor (train/executor.h) runs any of them, and the planner predicts memory
// by running the same list through a measuring ledger.
//
//   Forward(i, save)  run block i on its stored input; with save it keeps what its backward needs,
//                     without save only its output survives. Its output becomes block i+1's input.
//   Drop(i)           forget block i's stored input (a checkpoint, or an output no longer needed).
//   Loss              loss and its gradient from the last block's output (which is then freed).
//   Backward(i)       backward of block i (needs its saved tensors and the gradient of its output).
//
// Strategies (n blocks):            stored activations   block forwards per step
//   store-all                       O(n)                 n
//   memory-poor                     O(1)                 n (n + 1) / 2
//   sqrt                            O(sqrt n)            n + (start of the last segment) <= 2n
//   optimal (budget)                fits the budget      fewest for the budget (dynamic programming)
#include <cstdint>
#include <string>
#include <vector>

#include "models/model.h"
#include "train/batch.h"

namespace frugal {

struct ScheduleOp {
  enum class Kind { Forward, Drop, Loss, Backward };
  Kind kind;
  int block = 0;
  bool save = false;  // Forward only
};

struct Schedule {
  std::string strategy;
  int blocks = 0;
  std::vector<ScheduleOp> ops;
  int64_t forward_calls() const;
};

Schedule store_all_schedule(int blocks);
Schedule memory_poor_schedule(int blocks);
Schedule sqrt_schedule(int blocks);

// Activation bytes of each block for one micro-batch, measured by running the blocks through a
// measuring ledger (no memory, no kernels), each through forward_child under `rc`: the run's
// precision decides what a block stores (half tensors under fp16/bf16).
struct BlockCosts {
  std::vector<int64_t> output;       // bytes of block i's output
  std::vector<int64_t> keep;         // activation bytes left after Forward(i, save), output included
  std::vector<int64_t> peak_save;    // activation peak during Forward(i, save), above what was live before
  std::vector<int64_t> peak_nosave;  // the same for Forward(i, no save)
  int64_t baseline = 0;              // activations live before the chain runs (the batch's tensors)
};
BlockCosts measure_block_costs(Model& model, int64_t micro_batch, int64_t batch_size, const RunContext& rc);

// The schedule with the fewest block forwards whose activation peak stays within budget_bytes:
// dynamic programming over the chain (persistent checkpoints, as in Revolve (Griewank & Walther,
// 2000) and its heterogeneous-chain form in rotor (Beaumont et al., 2019)): for blocks s..t either
// keep everything, or keep block s's tensors and solve s+1..t, or advance to j keeping x_j and
// solve j..t then s..j-1. Memory is counted in slots (rounded down), and the chosen plan is then
// checked in exact bytes, lowering the slot count until it fits: the budget always holds, and the
// plan is optimal up to the slot granularity. Error naming (about) the smallest feasible budget
// when none fits. Chains of up to 512 blocks.
Schedule optimal_schedule(const BlockCosts& costs, int64_t budget_bytes);

// The schedule for --checkpoint STRATEGY (and --activation-budget for optimal); `rc` is the run's
// context (its precision), which the optimal planner measures block costs under.
Schedule make_schedule(const std::string& strategy, Model& model, int64_t micro_batch, int64_t batch_size,
                       int64_t activation_budget, const RunContext& rc);

}  // namespace frugal
