#include "nn/dropout.h"

#include "core/rng.h"
#include "kernels/convert.h"

namespace frugal {

DropoutKey DropoutSpec::key(const RunContext& rc, int64_t per_sample) const {
  DropoutKey k;
  k.seed = rc.seed;
  k.stream = rng_stream(0xD5 + static_cast<uint64_t>(site), rc.step, static_cast<uint64_t>(rc.block_index));
  k.first = rc.sample_offset * static_cast<uint64_t>(per_sample);
  k.p = p;
  return k;
}

namespace {
void apply(const Tensor& x, const Tensor& y, const DropoutKey& key) {
  if (x.dtype() == DType::F32) dropout_apply(key, x.f32(), y.f32(), x.numel());
  else dropout_apply_half(x.dtype(), key, x.u16(), y.u16(), x.numel());
}
}  // namespace

void dropout_in_place(const Tensor& x, const DropoutSpec& spec, const RunContext& rc) {
  if (!spec.active(rc) || measuring(x)) return;
  apply(x, x, spec.key(rc, x.numel() / x.dim(0)));
}

Tensor dropout_copy(const Tensor& x, const DropoutSpec& spec, const RunContext& rc) {
  const Tensor x32 = widen(x);  // x itself when fp32
  Tensor y = Tensor::empty(x.shape(), DType::F32, MemCategory::Workspace);
  if (!measuring(x)) dropout_apply(spec.key(rc, x.numel() / x.dim(0)), x32.f32(), y.f32(), x.numel());
  return y;
}

}  // namespace frugal
