#include "train/loss.h"

#include "core/error.h"
#include "kernels/cross_entropy.h"
#include "kernels/mse.h"

namespace frugal {

double loss_forward_backward(LossKind kind, const Tensor& output, const Tensor& targets, double normalizer,
                             Tensor& doutput) {
  doutput = Tensor::empty(output.shape(), DType::F32, MemCategory::Workspace);
  if (measuring(output)) return 0.0;
  if (kind == LossKind::CrossEntropy) {
    check(normalizer > 0, "the batch has no counted targets (all are -100)");
    const int64_t classes = output.dim(-1);
    const int64_t rows = output.numel() / classes;
    check(targets.numel() == rows, "targets " + targets.shape().str() + " do not match outputs " + output.shape().str());
    const int32_t* t = targets.i32();
    for (int64_t i = 0; i < rows; ++i)
      check(t[i] == kIgnoreIndex || (t[i] >= 0 && t[i] < classes),
            "target " + std::to_string(t[i]) + " out of range for " + std::to_string(classes) + " classes");
    return cross_entropy_forward_backward(output.f32(), t, rows, classes, normalizer, doutput.f32()) / normalizer;
  }
  check(normalizer > 0, "the batch has no samples");
  check(targets.shape() == output.shape(),
        "targets " + targets.shape().str() + " do not match predictions " + output.shape().str());
  const int64_t cols = output.dim(-1);
  return mse_forward_backward(output.f32(), targets.f32(), output.numel() / cols, cols, normalizer, doutput.f32());
}

}  // namespace frugal
