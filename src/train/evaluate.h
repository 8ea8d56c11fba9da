#pragma once
// Evaluation passes (no gradients, BatchNorm on running statistics).
#include "io/fashion_mnist.h"
#include "models/model.h"

namespace frugal {

// Fraction of images whose arg-max class equals the label. flatten: (N, 784) inputs for an MLP.
double classification_accuracy(Model& model, const ImageDataset& data, bool flatten, int64_t batch_size = 500);

}  // namespace frugal
