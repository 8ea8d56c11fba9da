#include "train/precision.h"

#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "kernels/convert.h"

namespace frugal {

DType parse_precision(const std::string& name, const std::string& flag) {
  if (name == "fp32") return DType::F32;
  if (name == "fp16") return DType::F16;
  if (name == "bf16") return DType::BF16;
  throw Error(flag + " must be fp32, fp16 or bf16, not '" + name + "'");
}

std::string precision_name(DType dtype) {
  return dtype == DType::F16 ? "fp16" : dtype == DType::BF16 ? "bf16" : "fp32";
}

MasterWeights::MasterWeights(const std::vector<Param*>& params, DType dtype, bool keep_master, std::vector<bool> owned)
    : params_(params), keep_master_(keep_master), owned_(std::move(owned)) {
  check(is_half(dtype), "master weights: the compute copy must be fp16 or bf16");
  if (owned_.empty()) owned_.assign(params_.size(), true);
  check(owned_.size() == params_.size(), "master weights: ownership list does not match the parameters");
  for (size_t k = 0; k < params_.size(); ++k) {
    Param* p = params_[k];
    // A parameter this rank does not own is not trainable *here*: no master, no optimizer state.
    Param master{p->name, Tensor(), Tensor(), p->trainable && owned_[k]};
    if (keep_master && master.trainable && p->value.category() == MemCategory::MasterParams) {
      master.value = p->value;  // born fp32 as the master (models/param_storage.h): adopted, not copied
    } else if (keep_master && master.trainable) {
      master.value = Tensor::empty(p->value.shape(), DType::F32, MemCategory::MasterParams);
      master.value.copy_from(p->value);
    }
    masters_.push_back(master);
    if (p->value.is_placeholder()) continue;  // held elsewhere (ZeRO-3) or quantised (nf4/int8 base)
    // The fp32 value is freed here. A frozen base already stored in a half type (--base-precision)
    // stays as it is in that type, or goes through fp32 (exact) to the other one.
    if (p->value.dtype() == dtype) continue;
    check(!master.trainable || p->value.dtype() == DType::F32, "master weights: trainable " + p->name + " is not fp32");
    p->value = round_to(widen(p->value), dtype, MemCategory::Params);
  }
}

void MasterWeights::step(Optimizer& optimizer, float lr) {
  begin_step(optimizer);
  for (size_t k = 0; k < params_.size(); ++k) update_param(optimizer, k, lr);
}

void MasterWeights::begin_step(Optimizer& optimizer) {
  views_ = optimizer_params();  // (shapes for the optimizer's state even without masters)
  optimizer.begin_step(views_);
  changed_ = lost_ = 0;
  lost_fraction_ = 0.0;
}

void MasterWeights::update_param(Optimizer& optimizer, size_t k, float lr) {
  // The optimizer sees fp32 parameters: the master, or an fp32 widening of the half weight.
  Param* p = params_[k];
  Param& m = masters_[k];
  if (!m.trainable || !p->grad.defined()) return;
  m.grad = p->grad;
  if (!keep_master_) m.value = widen(p->value);
  if (m.value.has_data()) optimizer.update_param(views_, k, lr);
  m.grad = Tensor();
  if (keep_master_) {
    round_into(m.value, p->value);
    return;
  }
  // Count the updates that rounding erases: the fp32 value moved, the half weight did not.
  const Tensor old_wide = widen(p->value);
  round_into(m.value, p->value);
  const Tensor new_wide = widen(p->value);
  if (m.value.has_data()) {
    const int64_t n = p->value.numel();
    const float *updated = m.value.f32(), *old = old_wide.f32(), *rounded = new_wide.f32();
    int64_t changed = 0, lost = 0;
#pragma omp parallel for reduction(+ : changed, lost) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      if (updated[i] != old[i]) {
        ++changed;
        if (rounded[i] == old[i]) ++lost;
      }
    }
    changed_ += changed, lost_ += lost;
    lost_fraction_ = changed_ > 0 ? static_cast<double>(lost_) / static_cast<double>(changed_) : 0.0;
  }
  m.value = Tensor();
}

std::vector<Param*> MasterWeights::optimizer_params() {
  std::vector<Param*> out;
  for (size_t k = 0; k < masters_.size(); ++k) {
    // Without masters the optimizer's view holds a value only during step(); its shape is what
    // the optimizer's state needs.
    if (!masters_[k].value.defined() && masters_[k].trainable) masters_[k].value = params_[k]->value;
    out.push_back(&masters_[k]);
  }
  return out;
}

std::vector<std::pair<std::string, Tensor>> MasterWeights::master_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  if (!keep_master_) return out;
  for (const Param& m : masters_)
    if (m.value.defined() && m.value.dtype() == DType::F32) out.emplace_back("master/" + m.name, m.value);
  return out;
}

void MasterWeights::restore_fp32() {
  for (size_t k = 0; k < params_.size(); ++k) {
    Param* p = params_[k];
    if (p->value.dtype() == DType::F32 || p->value.is_placeholder()) continue;  // (ZeRO-3: held elsewhere)
    // A frozen weight (LoRA's base) stays in the type it was stored in for training: that is all it
    // holds, and widening it doubled the process's memory after training (Qwen3-0.6B's bf16 base:
    // +1 GiB of RSS above the run's peak for no information).
    if (!p->trainable) continue;
    if (keep_master_ && masters_[k].value.defined()) {
      Tensor exact = Tensor::empty(p->value.shape(), DType::F32, MemCategory::Params);
      exact.copy_from(masters_[k].value);
      p->value = exact;
    } else {
      p->value = widen(p->value, MemCategory::Params);
    }
    masters_[k].value = Tensor();
  }
}

void LossScaleOptions::set_mode(const std::string& text) {
  if (text.empty()) {
    mode = "auto";
    return;
  }
  if (text == "dynamic" || text == "none") {
    mode = text;
    return;
  }
  char* end = nullptr;
  const double number = std::strtod(text.c_str(), &end);
  check(end != text.c_str() && *end == '\0' && std::isfinite(number) && number > 0,
        "--loss-scale must be dynamic, none or a positive number, not '" + text + "'");
  check(value == LossScaleOptions{}.value, "--loss-scale " + text + " is a fixed scale: --loss-scale-init sets the "
                                          "dynamic scale's start; drop one of them");
  mode = "static";
  value = number;
}

void LossScaleOptions::validate() const {
  check(mode == "auto" || mode == "dynamic" || mode == "none" || mode == "static",
        "--loss-scale must be dynamic, none or a positive number");
  check(std::isfinite(value) && value > 0, "the loss scale must be a positive finite number");
  check(growth_interval >= 1, "--loss-scale-interval must be at least 1");
  check(growth > 1 && std::isfinite(growth), "--loss-scale-growth must be > 1");
  check(backoff > 0 && backoff < 1, "--loss-scale-backoff must be in (0, 1)");
}

LossScaler::LossScaler(const LossScaleOptions& options, DType precision) : options_(options) {
  options.validate();
  mode_ = options.mode == "auto" ? (precision == DType::F16 ? "dynamic" : "none") : options.mode;
  scale_ = mode_ == "none" ? 1.0 : options.value;
}

nlohmann::json LossScaler::state() const {
  return {{"scale", scale_}, {"good_steps", good_steps_}, {"skipped", skipped_}};
}

void LossScaler::set_state(const nlohmann::json& state) {
  scale_ = state.at("scale").get<double>();
  good_steps_ = state.at("good_steps").get<int64_t>();
  skipped_ = state.at("skipped").get<int64_t>();
  check(std::isfinite(scale_) && scale_ > 0, "checkpoint: invalid loss scale");
}

bool gradients_finite(const std::vector<Param*>& params, Communicator* across) {
  int64_t bad = 0;
  for (Param* p : params) {
    if (!p->trainable || !p->grad.has_data() || bad) continue;
    const float* g = p->grad.f32();
    const int64_t n = p->grad.numel();
    int local = 0;
#pragma omp parallel for reduction(| : local) schedule(static)
    for (int64_t i = 0; i < n; ++i) local |= !std::isfinite(g[i]);
    bad = local;
  }
  if (across) across->allreduce_sum(&bad, 1);
  return bad == 0;
}

bool LossScaler::unscale_and_check(const std::vector<Param*>& params, Communicator* across) {
  bool finite = true;
  const float inv = static_cast<float>(1.0 / scale_);
  for (Param* p : params) {
    if (!p->trainable || !p->grad.has_data()) continue;
    float* g = p->grad.f32();
    const int64_t n = p->grad.numel();
    int bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      g[i] *= inv;
      bad |= !std::isfinite(g[i]);
    }
    if (bad) finite = false;
  }
  if (across) {
    int64_t bad_ranks = finite ? 0 : 1;
    across->allreduce_sum(&bad_ranks, 1);
    finite = bad_ranks == 0;
  }
  if (!finite) {
    ++skipped_;
    good_steps_ = 0;
    if (mode_ == "dynamic") scale_ *= options_.backoff;
    return false;
  }
  if (mode_ == "dynamic" && ++good_steps_ >= options_.growth_interval) {
    scale_ *= options_.growth;
    good_steps_ = 0;
  }
  return true;
}

}  // namespace frugal
