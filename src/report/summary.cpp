#include "report/summary.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>

#include "core/units.h"

namespace frugal {

nlohmann::json memory_json(const MemorySnapshot& s) {
  nlohmann::json j;
  for (int c = 0; c < kNumMemCategories; ++c) j[mem_category_name(static_cast<MemCategory>(c))] = s.bytes[c];
  j["total"] = s.total;
  return j;
}

int64_t peak_rss_bytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

nlohmann::json make_summary(const RunFacts& f) {
  std::vector<double> losses, times;
  for (const auto& s : f.steps) {
    losses.push_back(s.loss);
    if (s.step > 0 || f.steps.size() == 1) times.push_back(s.seconds);  // the first step warms caches up
  }
  const double step_time = median(times);
  nlohmann::json j;
  j["steps"] = f.steps.size();
  j["final_loss"] = losses.empty() ? 0.0 : losses.back();
  j["losses"] = losses;
  j["step_time_s"] = step_time;
  const double per_step = static_cast<double>(f.samples_per_step) * (f.token_model ? f.tokens_per_sample : 1);
  j[f.token_model ? "tokens_per_s" : "samples_per_s"] = step_time > 0 ? per_step / step_time : 0.0;
  j["total_params"] = f.total_params;
  j["trainable_params"] = f.trainable_params;
  j["layer_count"] = f.layer_count;
  j["forward_calls"] = f.steps.empty() ? 0 : f.steps.back().forward_calls;
  j["memory"] = memory_json(f.measured);
  j["predicted_memory"] = memory_json(f.predicted);
  j["kernels"] = f.kernels;
  j["memory_at_peak"] = memory_json(f.at_peak);  // what the total's peak is made of
  j["peak_rss_bytes"] = peak_rss_bytes();
  int64_t skipped = 0;
  for (const auto& s : f.steps) skipped += s.skipped ? 1 : 0;
  j["skipped_steps"] = skipped;
  j["loss_scale"] = f.final_loss_scale;
  return j;
}

nlohmann::json step_metrics(const StepRecord& r, const MemoryLedger& ledger) {
  return {{"step", r.step + 1},       {"loss", r.loss},   {"grad_norm", r.grad_norm},
          {"lr", r.lr},               {"seconds", r.seconds}, {"items", r.items},
          {"forward_calls", r.forward_calls}, {"live_bytes", ledger.live().total}, {"peak_bytes", ledger.peak().total},
          {"loss_scale", r.loss_scale},       {"skipped", r.skipped}, {"lost_update_fraction", r.lost_update_fraction}};
}

}  // namespace frugal

namespace frugal {

void print_kernels(const nlohmann::json& kernels) {
  for (const auto& [name, k] : kernels.items()) {
    std::string line = name + ":";
    for (const auto& [key, value] : k.items()) {
      std::string shown = value.is_string() ? value.get<std::string>() : value.dump();
      std::string label = key;
      if (key.ends_with("_bytes") && value.is_number()) {
        label = key.substr(0, key.size() - 6);
        shown = format_bytes(value.get<double>());
      }
      line += (line.back() == ':' ? " " : ", ") + (key == "kernel" ? shown : label + " " + shown);
    }
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace frugal
