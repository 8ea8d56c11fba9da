#pragma once
// Fashion-MNIST (Debian package dataset-fashion-mnist): 28x28 greyscale images in 10 classes,
// 60000 for training and 10000 for testing, stored as gzip-compressed IDX files.
#include <cstdint>
#include <string>
#include <vector>

#include "core/ledger.h"
#include "core/tensor.h"

namespace frugal {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct ImageDataset {
  // (N, 1, 28, 28) F32 in [0, 1]. Allocated from input_data_ledger(), not the current ledger: a
  // data set is input data, not training memory, so it must not show up in (or distort) the
  // training memory report. Views of it (slice_rows) can be fed to a model as a batch.
  Tensor images;
  std::vector<int32_t> labels;  // N class indices in 0..9
};

// Loads {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz from `dir` (an uncompressed file of the
// name without .gz is accepted too). limit >= 0 keeps only the first `limit` examples (and reads
// no further). Error if a file is missing (naming the Debian package) or malformed.
ImageDataset load_fashion_mnist(const std::string& dir, bool train, int64_t limit = -1);

// The process-wide ledger that holds input data sets. Kept apart from the training ledger (and
// never destroyed, so a data set may outlive anything). Not thread-safe: load and free data sets
// from one thread at a time.
MemoryLedger& input_data_ledger();

}  // namespace frugal
