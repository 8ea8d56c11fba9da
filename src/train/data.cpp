#include "train/data.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "io/text_corpus.h"
#include "models/cnn.h"
#include "models/causal_lm.h"
#include "models/mlp.h"
#include "text/tokenizer.h"
#include "text/token_file.h"

namespace frugal {

namespace {
// Stream ids keep the data's random numbers apart from the weights'.
constexpr uint64_t kDataStream = 0xDA7A;

// A text's ids under the tokenizer, with a progress line on stderr for a large text.
std::vector<int32_t> tokenize_in_memory(const std::string& text, TextTokenizer& tokenizer, const std::string& name) {
  std::vector<int32_t> ids;
  const bool show = text.size() >= (size_t{16} << 20);
  tokenizer.encode_append(text, ids, [&](size_t done) {
    if (show) std::fprintf(stderr, "\rtokenizing %s: %.0f%%", name.c_str(), 100.0 * double(done) / double(text.size()));
  });
  if (show) std::fprintf(stderr, "\rtokenizing %s: %zu tokens\n", name.c_str(), ids.size());
  return ids;
}

// --data for a language model: a token file (mapped), or a text (fortunes or a path) as bytes or,
// with a tokenizer, as its ids.
std::unique_ptr<TokenSequence> language_model_tokens(const std::string& spec, TextTokenizer* tokenizer) {
  if (spec != "fortunes" && is_token_file(spec)) return token_file_sequence(spec);
  std::string text = spec == "fortunes" ? load_fortunes_corpus() : load_text_file(spec);
  if (!tokenizer) return byte_sequence(std::move(text));
  return id_sequence(tokenize_in_memory(text, *tokenizer, spec), tokenizer->vocab_size());
}
}  // namespace

TokenWindows::TokenWindows(std::string text, int64_t context, uint64_t seed, std::string description)
    : TokenWindows(byte_sequence(std::move(text)), context, seed, std::move(description)) {}

TokenWindows::TokenWindows(std::unique_ptr<TokenSequence> tokens, int64_t context, uint64_t seed, std::string description)
    : tokens_(std::move(tokens)), context_(context), seed_(seed), description_(std::move(description)) {
  check(tokens_->size() > context_ + 1, description_ + ": " + std::to_string(tokens_->size()) +
                                           " tokens, fewer than one window of " + std::to_string(context_ + 1));
}

Batch TokenWindows::batch(int64_t step, int64_t batch_size) {
  Batch b{Tensor::empty({batch_size, context_}, DType::I32, MemCategory::Activations),
          Tensor::empty({batch_size, context_}, DType::I32, MemCategory::Activations)};
  if (!b.inputs.has_data()) return b;
  const auto windows = static_cast<uint64_t>(tokens_->size() - context_);
  std::vector<int32_t> window(static_cast<size_t>(context_ + 1));
  for (int64_t s = 0; s < batch_size; ++s) {
    const auto w = philox4x32(seed_, rng_stream(kDataStream, step), s);
    const uint64_t start = ((static_cast<uint64_t>(w[1]) << 32) | w[0]) % windows;  // 64 bits: any length
    tokens_->copy(static_cast<int64_t>(start), context_ + 1, window.data());
    std::copy_n(window.begin(), context_, b.inputs.i32() + s * context_);
    std::copy_n(window.begin() + 1, context_, b.targets.i32() + s * context_);
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

std::unique_ptr<DataSource> make_data_source(const std::string& spec, const Model& model, uint64_t seed,
                                             TextTokenizer* tokenizer) {
  const std::string arch = model.arch();
  if (const CausalLm* lm = as_causal_lm(model)) {
    if (spec == "synthetic") return std::make_unique<RandomTokens>(lm->vocab_size(), lm->context(), seed);
    check(spec != "fashion-mnist", "--data fashion-mnist needs --arch mlp or cnn, not " + arch);
    std::unique_ptr<TokenSequence> tokens = language_model_tokens(spec, tokenizer);
    const int64_t vocab = lm->vocab_size();
    check(tokens->vocab_bound() <= vocab,
          "--data " + spec + ": its token ids reach " + std::to_string(tokens->vocab_bound() - 1) + " (" +
              (tokenizer ? "the tokenizer's vocabulary" : is_token_file(spec) ? "the token file's vocabulary" : "bytes") +
              "), but the model's vocab_size is " + std::to_string(vocab));
    return std::make_unique<TokenWindows>(std::move(tokens), lm->context(), seed, spec == "fortunes" ? "fortunes text" : spec);
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
