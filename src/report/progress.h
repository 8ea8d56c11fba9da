#pragma once
// A one-line progress display on stderr: redrawn in place on a terminal, one line every
// `every` steps otherwise (logs, CI).
#include <string>

#include "core/ledger.h"
#include "train/trainer.h"

namespace frugal {

class Progress {
 public:
  Progress(int64_t total_steps, bool token_model, int64_t items_per_step);
  void update(const StepRecord& r, const MemoryLedger& ledger);
  // The latest evaluation on held-out data: shown in every progress line from now on, and printed
  // once as a line of its own.
  void set_eval(int64_t step, double loss, double perplexity, double accuracy);
  void finish();

 private:
  int64_t total_, every_;
  bool tokens_;
  int64_t items_per_step_;
  bool tty_;
  int64_t skipped_ = 0;  // steps skipped by the loss scaler so far
  double smoothed_rate_ = 0;
  std::string eval_;  // " | eval loss ..." once there is one
};

}  // namespace frugal
