#include "train/batch.h"

#include <algorithm>

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

Batch Batch::slice(int64_t begin, int64_t end) const {
  if (example_starts.empty()) {
    Batch b{inputs.slice_rows(begin, end), targets.slice_rows(begin, end)};
    if (positions.defined()) b.positions = positions.slice_rows(begin, end);
    return b;
  }
  check(0 <= begin && begin <= end && end < static_cast<int64_t>(example_starts.size()), "batch: slice out of range");
  const int64_t first = example_starts[static_cast<size_t>(begin)], last = example_starts[static_cast<size_t>(end)];
  const int64_t n = inputs.dim(1);
  // Tokens [first, last) of the (1, N) row, as a (1, last - first) view.
  auto tokens = [&](const Tensor& t) { return t.view({n}).slice_rows(first, last).view({1, last - first}); };
  Batch b{tokens(inputs), tokens(targets)};
  if (positions.defined()) b.positions = tokens(positions);
  for (int64_t e = begin; e <= end; ++e) b.example_starts.push_back(example_starts[static_cast<size_t>(e)] - first);
  return b;
}

void validate_positions(const Tensor& positions) {
  check(positions.ndim() == 2 && positions.dtype() == DType::I32,
        "batch 'positions': expected int32 (B, T), got " + dtype_name(positions.dtype()) + " " + positions.shape().str());
  if (!positions.has_data()) return;
  const int64_t B = positions.dim(0), T = positions.dim(1);
  const int32_t* p = positions.i32();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const int32_t v = p[b * T + t];
      check(v == 0 || (t > 0 && v == p[b * T + t - 1] + 1),
            "batch 'positions': row " + std::to_string(b) + " token " + std::to_string(t) + " has position " +
                std::to_string(v) + " (each is 0, starting an example, or the previous one + 1)");
    }
}

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
  if (batch.positions.defined()) {  // examples in rows: any row length (ragged: one row of all of them)
    check(batch.inputs.ndim() == 2 && batch.inputs.dtype() == DType::I32 && batch.targets.shape() == batch.inputs.shape(),
          "batch: examples need int32 (rows, T) inputs and targets of one shape, got " + batch.inputs.shape().str() +
              " and " + batch.targets.shape().str());
  } else {
    expect(batch.inputs, model.sample_input_shape(), model.input_dtype(), "inputs");
    expect(batch.targets, model.sample_target_shape(), model.target_dtype(), "targets");
  }
  check(batch.inputs.dim(0) == batch.targets.dim(0), "batch: inputs and targets hold different numbers of samples");
  check(batch.example_starts.empty() || (batch.example_starts.front() == 0 && batch.example_starts.back() == batch.inputs.numel() &&
                                         std::is_sorted(batch.example_starts.begin(), batch.example_starts.end())),
        "batch: example starts do not divide the row");
  check(batch.size() > 0, "batch: no samples");
  if (batch.positions.defined()) {
    check(model.input_dtype() == DType::I32 && batch.positions.shape() == batch.inputs.shape(),
          "batch 'positions': expected the inputs' shape " + batch.inputs.shape().str() + " (token models only)");
    validate_positions(batch.positions);
  }
}

}  // namespace frugal
