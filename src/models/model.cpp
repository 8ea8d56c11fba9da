#include "models/model.h"

#include "core/error.h"

namespace frugal {

std::vector<Param*> Model::params() const {
  std::vector<Param*> out;
  for (const auto& block : blocks_) block->collect_params(out);
  collect_head_params(out);
  return out;
}

std::vector<Param*> Model::state() const {
  std::vector<Param*> out = params();
  collect_buffers(out);
  return out;
}

Param& Model::find_state(const std::string& name) const {
  for (Param* p : state())
    if (p->name == name) return *p;
  throw Error(arch() + " model has no tensor '" + name + "'");
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (Param* p : params()) n += p->value.numel();
  return n;
}

int64_t Model::trainable_parameter_count() const {
  int64_t n = 0;
  for (Param* p : params())
    if (p->trainable) n += p->value.numel();
  return n;
}

void Model::init_param(size_t index, const Tensor& into, uint64_t seed) const {
  (void)index, (void)into, (void)seed;
  throw Error(arch() + " models draw their weights all at once: --base-precision nf4|int8 needs a GPT, or a --model "
              "directory to read the weights from");
}

}  // namespace frugal
