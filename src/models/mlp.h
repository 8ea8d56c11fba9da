#pragma once
// Multi-layer perceptron: n_layers linear layers, each but the last followed by an optional
// normalisation (models/normalization.h) and ReLU. Each hidden layer is one block of the chain; the last linear is the final
// block. Regression (MSE) or classification (cross-entropy over out_features classes).
// Linear weights use torch.nn.Linear's (out, in) layout: layers.{i}.weight, layers.{i}.bias,
// layers.{i}.bn.{weight,bias,running_mean,running_var} or layers.{i}.norm.{weight,bias}.
#include "models/model.h"
#include "nn/batchnorm.h"

namespace frugal {

struct MlpConfig {
  int64_t in_features = 32;
  int64_t hidden = 64;
  int64_t out_features = 8;
  int64_t n_layers = 3;
  std::string norm = "none";  // none | batch | group | layer
  bool classification = false;  // cross-entropy over out_features classes instead of MSE

  nlohmann::json to_json() const;
  static MlpConfig from_json(const nlohmann::json& j);
  void validate() const;
};

class Mlp : public Model {
 public:
  explicit Mlp(const MlpConfig& config);
  std::string arch() const override { return "mlp"; }
  nlohmann::json config() const override { return config_.to_json(); }
  LossKind loss_kind() const override {
    return config_.classification ? LossKind::CrossEntropy : LossKind::MeanSquaredError;
  }
  Shape sample_input_shape() const override { return {config_.in_features}; }
  DType input_dtype() const override { return DType::F32; }
  Shape sample_target_shape() const override { return config_.classification ? Shape{} : Shape{config_.out_features}; }
  DType target_dtype() const override { return config_.classification ? DType::I32 : DType::F32; }
  void init_weights(uint64_t seed) override;
  void apply_deferred_statistics() override;
  std::vector<std::pair<std::string, Linear*>> adaptable_linears() const override;
  const MlpConfig& mlp_config() const { return config_; }

 protected:
  void collect_buffers(std::vector<Param*>& out) const override;

 private:
  MlpConfig config_;
  std::vector<BatchNorm*> batchnorms_;
  std::vector<Param*> linear_params_;  // weight, bias of each linear layer, in order
  std::vector<Linear*> linears_;
};

// Linear regression: one linear layer (linear.weight (out, in), linear.bias) and MSE.
class LinearRegression : public Model {
 public:
  LinearRegression(int64_t in_features, int64_t out_features);
  std::string arch() const override { return "linear"; }
  nlohmann::json config() const override;
  LossKind loss_kind() const override { return LossKind::MeanSquaredError; }
  Shape sample_input_shape() const override { return {in_}; }
  DType input_dtype() const override { return DType::F32; }
  Shape sample_target_shape() const override { return {out_}; }
  DType target_dtype() const override { return DType::F32; }
  void init_weights(uint64_t seed) override;
  std::vector<std::pair<std::string, Linear*>> adaptable_linears() const override;

 private:
  int64_t in_, out_;
};

// PyTorch's default initialisation of a linear layer: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
void init_linear_default(const std::vector<Param*>& params, uint64_t seed);

}  // namespace frugal
