#include "models/param_storage.h"

#include <algorithm>

#include "core/ledger.h"

namespace frugal {

std::pair<DType, MemCategory> ParamStorage::of(const Param& p) const {
  const bool adapted_weight = std::find(adapted.begin(), adapted.end(), p.name) != adapted.end();
  const bool frozen = frozen_base || !p.trainable;
  if (precision == DType::F32) return {adapted_weight && frozen ? base : DType::F32, MemCategory::Params};
  if (!frozen) return master_weights ? std::pair{DType::F32, MemCategory::MasterParams} : std::pair{precision, MemCategory::Params};
  // A frozen adapted weight keeps --base-precision when that is a half type (MasterWeights converts
  // the other half type per tensor); every other frozen tensor is stored in the compute type.
  return {adapted_weight && base != DType::F32 ? base : precision, MemCategory::Params};
}

namespace {
// The books of shape-only models: never freed, so a shape tensor outliving its model is harmless.
MemoryLedger& shapes_ledger() {
  static MemoryLedger* ledger = new MemoryLedger(/*measure_only=*/true);
  return *ledger;
}
}  // namespace

std::unique_ptr<Model> build_in_storage(const std::function<std::unique_ptr<Model>()>& construct,
                                        const std::function<ParamStorage(const Model&)>& storage) {
  std::unique_ptr<Model> model;
  {
    LedgerScope scope(shapes_ledger());
    model = construct();
  }
  const ParamStorage s = storage(*model);
  if (s.all_fp32()) return construct();
  const std::vector<Param*> params = model->params();
  for (Param* p : model->state()) {
    const bool buffer = std::find(params.begin(), params.end(), p) == params.end();  // running statistics: fp32
    const auto [dtype, category] = buffer ? std::pair{DType::F32, MemCategory::Params} : s.of(*p);
    p->value = Tensor::zeros(p->value.shape(), dtype, category);
  }
  return model;
}

}  // namespace frugal
