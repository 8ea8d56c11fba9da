#pragma once
// Parameters born in their storage type (issue 15). Under --precision fp16|bf16 or --base-precision
// a model's weights end up in a half type; building them in fp32 first and converting afterwards
// held an fp32 copy of every weight at once (GPT-2 small: 475 MiB for a 240 MiB bf16 model). Here
// the model is first built with shapes only (no memory), then each parameter gets its storage, one
// at a time, in the type and category it keeps: initialisation and loading write straight into it.
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/model.h"

namespace frugal {

struct ParamStorage {
  DType precision = DType::F32;  // --precision: the compute copies of every parameter
  bool master_weights = true;    // with a half precision: trainable parameters keep an fp32 master
  DType base = DType::F32;       // --base-precision: the frozen weights of adapted linears
  bool frozen_base = false;      // LoRA: every base parameter is frozen
  std::vector<std::string> adapted;  // names of the adapted linears' weights ("h.0.attn.c_attn.weight")
  // ZeRO-3: parameters other ranks hold. Here they stay placeholders (Tensor::placeholder) in their
  // compute type: never allocated, initialised or loaded on this rank.
  std::vector<std::string> held_elsewhere;
  // ZeRO-1/2: trainable parameters whose FP32 master another rank keeps: born in the compute type.
  std::vector<std::string> master_elsewhere;
  // --base-precision nf4|int8: the adapted weights stay placeholders here; each is drawn or read and
  // quantised on its own afterwards (lora_setup.h quantize_adapted_weights).
  bool quantized_base = false;

  // The type and category `p` is born in: a half type where it is stored half; fp32 Params where it
  // stays fp32; fp32 MasterParams for a trainable parameter under a half precision with masters
  // (MasterWeights adopts it as the master and rounds the compute copy from it: no fp32 transient).
  std::pair<DType, MemCategory> of(const Param& p) const;
  // The type `p`'s compute copy has (what the layers read): of(p)'s, or the precision for a master.
  DType compute_type(const Param& p) const;
  bool held_here(const Param& p) const;
  bool plain() const {
    return precision == DType::F32 && base == DType::F32 && held_elsewhere.empty() && !quantized_base;
  }
};

// Builds the model with `construct` under a shape-only ledger, then gives every tensor of state()
// its storage in the current ledger, zeroed, in the type storage(model).of(p) names (a placeholder
// for a parameter held elsewhere); the caller then initialises (Model::init_weights writes every
// tensor that has memory) or loads every tensor. A plain storage (all fp32, all held here) is
// constructed again as usual.
std::unique_ptr<Model> build_in_storage(const std::function<std::unique_ptr<Model>()>& construct,
                                        const std::function<ParamStorage(const Model&)>& storage);

}  // namespace frugal
