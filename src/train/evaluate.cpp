#include "train/evaluate.h"

#include <algorithm>

#include "train/executor.h"

namespace frugal {

double classification_accuracy(Model& model, const ImageDataset& data, bool flatten, int64_t batch_size) {
  RunContext rc;
  rc.training = false;
  const int64_t n = static_cast<int64_t>(data.labels.size());
  int64_t correct = 0;
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t end = std::min(n, begin + batch_size);
    Tensor images = data.images.slice_rows(begin, end);  // (b, 1, 28, 28)
    if (flatten) images = images.view({end - begin, 28 * 28});
    Tensor logits = forward_only(model, images, rc);  // (b, classes)
    const int64_t classes = logits.dim(1);
    for (int64_t i = 0; i < end - begin; ++i) {
      const float* row = logits.f32() + i * classes;
      correct += (std::max_element(row, row + classes) - row) == data.labels[begin + i];
    }
  }
  return n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
}

}  // namespace frugal
