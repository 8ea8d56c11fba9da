#include "train/run_description.h"

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/threading.h"
#include "models/causal_lm.h"
#include "nn/linear.h"

namespace frugal {

namespace {

// The adapters on the model's linear layers, as one description (they share one config), or null.
nlohmann::json describe_lora(const Model& model) {
  nlohmann::json lora;
  std::vector<std::string> targets;
  std::set<std::string> bases;
  for (const auto& [name, linear] : model.adaptable_linears()) {
    const LoraAdapter* adapter = linear->lora();
    if (!adapter) continue;
    targets.push_back(name);
    const QuantizedMatrix* quantized = linear->quantized_weight();
    bases.insert(quantized ? quant_format_name(quantized->format()) : dtype_name(linear->weight().value.dtype()));
    lora = {{"rank", adapter->config().rank}, {"alpha", adapter->config().alpha}, {"dropout", adapter->config().dropout}};
  }
  if (lora.is_null()) return nullptr;
  lora["targets"] = targets;  // every adapted layer, e.g. "h.0.attn.c_attn"
  lora["base_storage"] = std::vector<std::string>(bases.begin(), bases.end());
  return lora;
}

// A float setting as the user wrote it: the shortest decimal that reads back as the same float
// (--lr 2e-3 is stored as the float 0.0020000000949949026; the record says 0.002).
double shortest_decimal(float value) {
  char text[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, static_cast<double>(value));
    if (std::strtof(text, nullptr) == value) break;
  }
  return std::strtod(text, nullptr);
}

nlohmann::json describe_loss_scale(const TrainOptions& o) {
  const LossScaleOptions& s = o.loss_scale;
  const std::string mode = s.mode == "auto" ? (o.precision == DType::F16 ? "dynamic" : "none") : s.mode;
  if (mode == "dynamic")
    return {{"mode", mode}, {"init", s.value}, {"interval", s.growth_interval}, {"growth", s.growth}, {"backoff", s.backoff}};
  if (mode == "static") return {{"mode", mode}, {"value", s.value}};
  return {{"mode", mode}};
}

}  // namespace

nlohmann::json describe_run(const Model& model, const TrainOptions& o) {
  nlohmann::json run{{"arch", model.arch()}, {"config", model.config()}};
  if (const CausalLm* lm = as_causal_lm(model)) run["context"] = lm->context();
  run["lora"] = describe_lora(model);
  nlohmann::json training{{"micro_batch", o.micro_batch}, {"accum", o.accum},       {"optimizer", o.optimizer},
                          {"lr", shortest_decimal(o.lr)}, {"weight_decay", shortest_decimal(o.weight_decay)},
                          {"clip_grad_norm", o.clip_grad_norm}, {"warmup", o.warmup}, {"schedule", o.schedule},
                          {"seed", o.seed},               {"checkpoint", o.checkpoint},
                          {"activation_budget", o.activation_budget}, {"zero", o.zero},
                          {"fused_update", o.fused_update}, {"threads", num_threads()}};
  if (o.optimizer == "adamw8bit") training["optimizer_block"] = o.optimizer_block;
  if (model.has_batchnorm()) training["bn_stats"] = o.bn_stats;
  run["training"] = training;
  run["precision"] = {{"precision", precision_name(o.precision)}, {"master_weights", o.master_weights},
                      {"loss_scale", describe_loss_scale(o)}};
  return run;
}

void check_settings_apply(const TrainOptions& o, const Model& model) {
  check(o.optimizer == "adamw8bit" || o.optimizer_block == TrainOptions{}.optimizer_block,
        "--optimizer-block sets adamw8bit's quantisation blocks, and this run's optimizer is " + o.optimizer +
            ": add --optimizer adamw8bit, or drop --optimizer-block");
  check(o.bn_stats == "micro" || model.has_batchnorm(), "--bn-stats " + o.bn_stats + " sets how BatchNorm's running "
        "statistics update, and this " + model.arch() + " model has no BatchNorm: drop --bn-stats");
  const LossScaleOptions defaults;
  const LossScaleOptions& s = o.loss_scale;
  const bool dynamic = s.mode == "dynamic" || (s.mode == "auto" && o.precision == DType::F16);
  const bool tuned = s.growth_interval != defaults.growth_interval || s.growth != defaults.growth ||
                     s.backoff != defaults.backoff || (s.mode != "static" && s.value != defaults.value);
  check(dynamic || !tuned, "--loss-scale-init/-interval/-growth/-backoff tune the dynamic loss scale, and this run's "
        "is " + std::string(s.mode == "static" ? "fixed" : "off") + " (--precision " + precision_name(o.precision) +
        (s.mode == "auto" ? ", whose default is no scaling" : "") + "): add --loss-scale dynamic, or drop them");
}

}  // namespace frugal
