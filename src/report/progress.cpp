#include "report/progress.h"

#include <unistd.h>

#include <cstdio>

#include "core/units.h"

namespace frugal {

Progress::Progress(int64_t total_steps, bool token_model, int64_t items_per_step)
    : total_(total_steps), tokens_(token_model), items_per_step_(items_per_step), tty_(isatty(STDERR_FILENO)) {
  every_ = tty_ ? 1 : std::max<int64_t>(1, total_steps / 20);
}

void Progress::update(const StepRecord& r, const MemoryLedger& ledger) {
  const double rate = r.seconds > 0 ? static_cast<double>(items_per_step_) / r.seconds : 0.0;
  smoothed_rate_ = smoothed_rate_ == 0 ? rate : 0.8 * smoothed_rate_ + 0.2 * rate;
  const int64_t done = r.step + 1;
  if (r.skipped) ++skipped_;
  if (done % every_ != 0 && done != total_ && done != 1) return;
  const int width = 20;
  const int filled = static_cast<int>(width * done / total_);
  std::string bar(filled, '#');
  bar += std::string(width - filled, '.');
  // Loss scaling (fp16): the scale of this step and the updates skipped so far.
  char scaling[64] = "";
  if (r.loss_scale != 1.0f || skipped_ > 0)
    std::snprintf(scaling, sizeof scaling, " | scale %g, %lld skipped", static_cast<double>(r.loss_scale),
                  static_cast<long long>(skipped_));
  std::fprintf(stderr, "%sstep %lld/%lld [%s] loss %.4f%s | %s %s/s | lr %.2e | mem %s (peak %s)%s%s",
               tty_ ? "\r\033[K" : "", static_cast<long long>(done), static_cast<long long>(total_), bar.c_str(),
               r.loss, eval_.c_str(), format_count(smoothed_rate_).c_str(), tokens_ ? "tok" : "samples", r.lr,
               format_bytes(static_cast<double>(ledger.live().total)).c_str(),
               format_bytes(static_cast<double>(ledger.peak().total)).c_str(), scaling, tty_ ? "" : "\n");
  std::fflush(stderr);
}

void Progress::set_eval(int64_t step, double loss, double perplexity, double accuracy) {
  char text[96];
  std::snprintf(text, sizeof text, " (eval %.4f)", loss);
  eval_ = text;
  std::fprintf(stderr, "%seval after step %lld: loss %.4f, perplexity %.3f, token accuracy %.2f%%\n",
               tty_ ? "\r\033[K" : "", static_cast<long long>(step), loss, perplexity, 100 * accuracy);
  std::fflush(stderr);
}

void Progress::finish() {
  if (tty_) std::fputc('\n', stderr);
}

}  // namespace frugal
