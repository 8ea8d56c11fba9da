#include "train/data.h"

#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "io/text_corpus.h"
#include "models/cnn.h"
#include "models/gpt.h"
#include "models/mlp.h"

namespace frugal {

namespace {
// Stream ids keep the data's random numbers apart from the weights'.
constexpr uint64_t kDataStream = 0xDA7A;
}

TokenWindows::TokenWindows(std::string text, int64_t context, uint64_t seed, std::string description)
    : text_(std::move(text)), context_(context), seed_(seed), description_(std::move(description)) {
  check(static_cast<int64_t>(text_.size()) > context_ + 1,
        description_ + ": the text (" + std::to_string(text_.size()) + " bytes) is shorter than one window of " +
            std::to_string(context_ + 1) + " bytes");
}

Batch TokenWindows::batch(int64_t step, int64_t batch_size) {
  Batch b{Tensor::empty({batch_size, context_}, DType::I32, MemCategory::Activations),
          Tensor::empty({batch_size, context_}, DType::I32, MemCategory::Activations)};
  if (!b.inputs.has_data()) return b;
  const uint64_t windows = text_.size() - static_cast<uint64_t>(context_);
  for (int64_t s = 0; s < batch_size; ++s) {
    const auto w = philox4x32(seed_, rng_stream(kDataStream, step), s);
    const uint64_t start = ((static_cast<uint64_t>(w[1]) << 32) | w[0]) % windows;  // 64 bits: any text length
    for (int64_t t = 0; t < context_; ++t) {
      b.inputs.i32()[s * context_ + t] = static_cast<uint8_t>(text_[start + t]);
      b.targets.i32()[s * context_ + t] = static_cast<uint8_t>(text_[start + t + 1]);
    }
  }
  return b;
}

Batch RandomTokens::batch(int64_t step, int64_t batch_size) {
  Batch b{Tensor::empty({batch_size, context_}, DType::I32, MemCategory::Activations),
          Tensor::empty({batch_size, context_}, DType::I32, MemCategory::Activations)};
  if (!b.inputs.has_data()) return b;
  // A random sequence of T+1 tokens per sample; targets are inputs shifted by one.
  for (int64_t s = 0; s < batch_size; ++s)
    for (int64_t t = 0; t <= context_; ++t) {
      const int32_t token = static_cast<int32_t>(
          philox4x32(seed_, rng_stream(kDataStream, step, s), t)[0] % static_cast<uint64_t>(vocab_));
      if (t < context_) b.inputs.i32()[s * context_ + t] = token;
      if (t > 0) b.targets.i32()[s * context_ + t - 1] = token;
    }
  return b;
}

SyntheticRegression::SyntheticRegression(int64_t in, int64_t out, uint64_t seed)
    : in_(in), out_(out), seed_(seed), a_(in * out), c_(in * out) {
  // The teacher is fixed (its own constant key), so every seed trains on the same task; the
  // seed varies the samples only.
  for (int64_t i = 0; i < in * out; ++i) {
    a_[i] = rng_normal(1234, rng_stream(kDataStream, 1), i);
    c_[i] = rng_normal(1234, rng_stream(kDataStream, 2), i);
  }
}

Batch SyntheticRegression::batch(int64_t step, int64_t batch_size) {
  Batch b{Tensor::empty({batch_size, in_}, DType::F32, MemCategory::Activations),
          Tensor::empty({batch_size, out_}, DType::F32, MemCategory::Activations)};
  if (!b.inputs.has_data()) return b;
  const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(in_));
  for (int64_t s = 0; s < batch_size; ++s) {
    float* x = b.inputs.f32() + s * in_;
    for (int64_t i = 0; i < in_; ++i) x[i] = rng_normal(seed_, rng_stream(kDataStream, step, s), i);
    float* y = b.targets.f32() + s * out_;
    for (int64_t o = 0; o < out_; ++o) {
      float lin = 0.0f, non = 0.0f;
      for (int64_t i = 0; i < in_; ++i) {
        lin += a_[o * in_ + i] * x[i];
        non += c_[o * in_ + i] * x[i];
      }
      const float noise = 0.01f * rng_normal(seed_, rng_stream(kDataStream, step, s), in_ + o);
      y[o] = lin * inv_sqrt + 0.5f * std::tanh(non * inv_sqrt) + noise;
    }
  }
  return b;
}

ImageClassification::ImageClassification(ImageDataset data, bool flatten, uint64_t seed)
    : data_(std::move(data)), flatten_(flatten), seed_(seed) {
  check(!data_.labels.empty(), "image data set is empty");
}

const std::vector<int64_t>& ImageClassification::permutation(int64_t epoch) {
  if (epoch != cached_epoch_) {
    const int64_t n = static_cast<int64_t>(data_.labels.size());
    perm_.resize(n);
    std::iota(perm_.begin(), perm_.end(), 0);
    for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates with counter-based draws
      const int64_t j = philox4x32(seed_, rng_stream(kDataStream, 3, epoch), i)[0] % static_cast<uint64_t>(i + 1);
      std::swap(perm_[i], perm_[j]);
    }
    cached_epoch_ = epoch;
  }
  return perm_;
}

Batch ImageClassification::batch(int64_t step, int64_t batch_size) {
  const int64_t pixels = 28 * 28;
  Batch b{flatten_ ? Tensor::empty({batch_size, pixels}, DType::F32, MemCategory::Activations)
                   : Tensor::empty({batch_size, 1, 28, 28}, DType::F32, MemCategory::Activations),
          Tensor::empty({batch_size}, DType::I32, MemCategory::Activations)};
  if (!b.inputs.has_data()) return b;
  const int64_t n = static_cast<int64_t>(data_.labels.size());
  for (int64_t s = 0; s < batch_size; ++s) {
    const int64_t position = step * batch_size + s;
    const int64_t index = permutation(position / n)[position % n];
    std::memcpy(b.inputs.f32() + s * pixels, data_.images.f32() + index * pixels, pixels * sizeof(float));
    b.targets.i32()[s] = data_.labels[index];
  }
  return b;
}

std::unique_ptr<DataSource> make_data_source(const std::string& spec, const Model& model, uint64_t seed) {
  const std::string arch = model.arch();
  if (arch == "gpt") {
    const auto& gpt = static_cast<const Gpt&>(model);
    check(gpt.gpt_config().vocab_size >= 256 || spec == "synthetic",
          "byte-level text needs vocab_size >= 256 (got " + std::to_string(gpt.gpt_config().vocab_size) + ")");
    if (spec == "synthetic") return std::make_unique<RandomTokens>(gpt.gpt_config().vocab_size, gpt.context(), seed);
    check(spec != "fashion-mnist", "--data fashion-mnist needs --arch mlp or cnn, not gpt");
    if (spec == "fortunes")
      return std::make_unique<TokenWindows>(load_fortunes_corpus(), gpt.context(), seed, "fortunes text");
    return std::make_unique<TokenWindows>(load_text_file(spec), gpt.context(), seed, spec);
  }
  if (spec == "fashion-mnist") {
    check(arch == "mlp" || arch == "cnn", "--data fashion-mnist needs --arch mlp or cnn, not " + arch);
    const bool flat = arch == "mlp";
    check(model.loss_kind() == LossKind::CrossEntropy && model.target_dtype() == DType::I32 &&
              model.sample_input_shape() == (flat ? Shape{28 * 28} : Shape{1, 28, 28}),
          "fashion-mnist needs a classifier of 28x28 images (" + std::string(flat ? "784 inputs" : "1x28x28 inputs") +
              ")");
    const int64_t classes = flat ? static_cast<const Mlp&>(model).mlp_config().out_features
                                 : static_cast<const Cnn&>(model).cnn_config().classes;
    check(classes == 10, "fashion-mnist has 10 classes; the model has " + std::to_string(classes) + " outputs");
    return std::make_unique<ImageClassification>(load_fashion_mnist(kFashionMnistDir, true), arch == "mlp", seed);
  }
  check(spec == "synthetic", "--data " + spec + " is not available for --arch " + arch +
                                 " (expected synthetic or fashion-mnist)");
  check(arch != "cnn", "--arch cnn trains on --data fashion-mnist");
  check(model.loss_kind() == LossKind::MeanSquaredError, "synthetic data for " + arch + " is a regression task");
  return std::make_unique<SyntheticRegression>(model.sample_input_shape()[0], model.sample_target_shape()[0], seed);
}

}  // namespace frugal
