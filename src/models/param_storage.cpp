#include "models/param_storage.h"

#include <algorithm>

#include "core/ledger.h"

namespace frugal {

std::pair<DType, MemCategory> ParamStorage::of(const Param& p) const {
  const bool adapted_weight = std::find(adapted.begin(), adapted.end(), p.name) != adapted.end();
  const bool frozen = frozen_base || !p.trainable;
  if (precision == DType::F32) return {adapted_weight && frozen ? base : DType::F32, MemCategory::Params};
  const bool master_here = std::find(master_elsewhere.begin(), master_elsewhere.end(), p.name) == master_elsewhere.end();
  if (!frozen)
    return master_weights && master_here ? std::pair{DType::F32, MemCategory::MasterParams}
                                         : std::pair{precision, MemCategory::Params};
  // A frozen adapted weight keeps --base-precision when that is a half type (MasterWeights converts
  // the other half type per tensor); every other frozen tensor is stored in the compute type.
  return {adapted_weight && base != DType::F32 ? base : precision, MemCategory::Params};
}

DType ParamStorage::compute_type(const Param& p) const {
  const auto [dtype, category] = of(p);
  return category == MemCategory::MasterParams ? precision : dtype;
}

bool ParamStorage::held_here(const Param& p) const {
  return std::find(held_elsewhere.begin(), held_elsewhere.end(), p.name) == held_elsewhere.end();
}

std::unique_ptr<Model> build_in_storage(const std::function<std::unique_ptr<Model>()>& construct,
                                        const std::function<ParamStorage(const Model&)>& storage) {
  std::unique_ptr<Model> model;
  {
    LedgerScope scope(MemoryLedger::shapes_only());
    model = construct();
  }
  const ParamStorage s = storage(*model);
  if (s.plain()) return construct();
  const std::vector<Param*> params = model->params();
  for (Param* p : model->state()) {
    const bool buffer = std::find(params.begin(), params.end(), p) == params.end();  // running statistics: fp32
    if (!buffer && !s.held_here(*p)) {
      p->value = Tensor::placeholder(p->value.shape(), s.compute_type(*p));
      continue;
    }
    if (s.quantized_base && std::find(s.adapted.begin(), s.adapted.end(), p->name) != s.adapted.end()) {
      p->value = Tensor::placeholder(p->value.shape(), DType::F32);  // quantised later, one at a time
      continue;
    }
    const auto [dtype, category] = buffer ? std::pair{DType::F32, MemCategory::Params} : s.of(*p);
    p->value = Tensor::zeros(p->value.shape(), dtype, category);
  }
  return model;
}

}  // namespace frugal
