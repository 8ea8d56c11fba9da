#pragma once
// A small CNN for 28x28 greyscale images (Fashion-MNIST):
//   n_blocks x [conv 3x3 pad 1 -> norm -> ReLU -> max-pool 2], channels c, 2c, 4c, ...
//   (norm: BatchNorm by default, or GroupNorm / LayerNorm-like GroupNorm(1), models/normalization.h)
//   then [flatten -> linear to 10 classes]. Each conv block and the head is one block of the chain.
// Names (PyTorch layouts): blocks.{i}.conv.{weight,bias}, blocks.{i}.bn.*, head.{weight,bias}.
#include "models/model.h"
#include "nn/batchnorm.h"

namespace frugal {

struct CnnConfig {
  int64_t channels = 16;  // of the first block; doubles per block
  int64_t n_blocks = 2;   // 1..3 (28 -> 14 -> 7 -> 3)
  int64_t classes = 10;
  std::string norm = "batch";  // batch | group | layer | none

  nlohmann::json to_json() const;
  static CnnConfig from_json(const nlohmann::json& j);
  void validate() const;
};

class Cnn : public Model {
 public:
  explicit Cnn(const CnnConfig& config);
  std::string arch() const override { return "cnn"; }
  nlohmann::json config() const override { return config_.to_json(); }
  LossKind loss_kind() const override { return LossKind::CrossEntropy; }
  Shape sample_input_shape() const override { return {1, 28, 28}; }
  DType input_dtype() const override { return DType::F32; }
  Shape sample_target_shape() const override { return {}; }
  DType target_dtype() const override { return DType::I32; }
  void init_weights(uint64_t seed) override;
  void apply_deferred_statistics() override;
  std::vector<std::pair<std::string, Linear*>> adaptable_linears() const override;
  const CnnConfig& cnn_config() const { return config_; }

 protected:
  void collect_buffers(std::vector<Param*>& out) const override;

 private:
  CnnConfig config_;
  std::vector<BatchNorm*> batchnorms_;
};

}  // namespace frugal
