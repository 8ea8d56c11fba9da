#include "train/batch.h"

#include "core/error.h"
#include "kernels/cross_entropy.h"

namespace frugal {

namespace {
Shape with_batch(const Shape& sample, int64_t batch) {
  switch (sample.ndim()) {
    case 0: return {batch};
    case 1: return {batch, sample[0]};
    case 2: return {batch, sample[0], sample[1]};
    default: return {batch, sample[0], sample[1], sample[2]};
  }
}
}  // namespace

Batch allocate_batch(const Model& model, int64_t batch_size) {
  return {Tensor::empty(with_batch(model.sample_input_shape(), batch_size), model.input_dtype(), MemCategory::Activations),
          Tensor::empty(with_batch(model.sample_target_shape(), batch_size), model.target_dtype(),
                        MemCategory::Activations)};
}

int64_t count_items(const Model& model, const Batch& batch) {
  if (model.target_dtype() == DType::I32 && batch.targets.has_data())
    return count_counted_targets(batch.targets.i32(), batch.targets.numel());
  if (model.target_dtype() == DType::I32) return batch.targets.numel();  // measure mode: all counted
  return batch.size();
}

void validate_batch(const Model& model, const Batch& batch) {
  auto expect = [&](const Tensor& t, const Shape& sample, DType dtype, const char* what) {
    const Shape want = with_batch(sample, t.ndim() ? t.dim(0) : 0);
    check(t.defined() && t.dtype() == dtype && t.shape() == want,
          std::string("batch '") + what + "': expected " + dtype_name(dtype) + " " + want.str() + " (first dimension " +
              "any), got " + (t.defined() ? dtype_name(t.dtype()) + " " + t.shape().str() : "nothing"));
  };
  expect(batch.inputs, model.sample_input_shape(), model.input_dtype(), "inputs");
  expect(batch.targets, model.sample_target_shape(), model.target_dtype(), "targets");
  check(batch.inputs.dim(0) == batch.targets.dim(0), "batch: inputs and targets hold different numbers of samples");
  check(batch.size() > 0, "batch: no samples");
}

}  // namespace frugal
