#include "io/fashion_mnist.h"

#include <filesystem>

#include "core/error.h"
#include "io/idx.h"

namespace frugal {

MemoryLedger& input_data_ledger() {
  static MemoryLedger* ledger = new MemoryLedger();  // leaked on purpose: outlives every data set
  return *ledger;
}

namespace {

std::string find_file(const std::string& dir, const std::string& name) {
  const std::string gz = (std::filesystem::path(dir) / (name + ".gz")).string();
  if (std::filesystem::exists(gz)) return gz;
  const std::string plain = (std::filesystem::path(dir) / name).string();
  if (std::filesystem::exists(plain)) return plain;
  throw Error("Fashion-MNIST file " + gz + " not found (install the Debian package dataset-fashion-mnist)");
}

}  // namespace

ImageDataset load_fashion_mnist(const std::string& dir, bool train, int64_t limit) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  const IdxArray images = read_idx(images_path, limit);
  const IdxArray labels = read_idx(labels_path, limit);
  check(images.dims.size() == 3 && images.dims[1] == 28 && images.dims[2] == 28,
        images_path + ": expected 28x28 images (IDX magic 0x00000803)");
  check(labels.dims.size() == 1, labels_path + ": expected a label vector (IDX magic 0x00000801)");
  const int64_t n = images.dims[0];
  check(labels.dims[0] == n, labels_path + ": has " + std::to_string(labels.dims[0]) + " labels but " +
                                 images_path + " has " + std::to_string(n) + " images");

  ImageDataset ds;
  ds.labels.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t y = labels.data[static_cast<size_t>(i)];
    if (y >= 10)
      throw Error(labels_path + ": label " + std::to_string(y) + " at index " + std::to_string(i) +
                  " is not a class in 0..9");
    ds.labels[static_cast<size_t>(i)] = y;
  }
  {
    LedgerScope scope(input_data_ledger());
    // The category only labels the buffer inside the input-data ledger.
    ds.images = Tensor::empty({n, 1, 28, 28}, DType::F32, MemCategory::Activations);
  }
  float* dst = ds.images.f32();
  for (size_t i = 0; i < images.data.size(); ++i) dst[i] = static_cast<float>(images.data[i]) / 255.0f;
  return ds;
}

}  // namespace frugal
