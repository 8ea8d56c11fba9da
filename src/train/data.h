#pragma once
// Training data as a pure function of (seed, step): the batch of optimizer step s is the same
// however the run was split into micro-batches, interrupted or resumed.
#include <memory>
#include <string>
#include <vector>

#include "io/fashion_mnist.h"
#include "models/model.h"
#include "train/batch.h"
#include "train/token_sequence.h"

namespace frugal {

class TextTokenizer;

class DataSource {
 public:
  virtual ~DataSource() = default;
  // The optimizer batch of `step` with `batch_size` samples (tensors in MemCategory::Activations).
  virtual Batch batch(int64_t step, int64_t batch_size) = 0;
  virtual std::string describe() const = 0;
};

// Windows of T+1 consecutive tokens at positions drawn from (seed, step, sample); inputs are the
// first T, targets the last T. The tokens are a text's bytes, or any TokenSequence.
class TokenWindows : public DataSource {
 public:
  TokenWindows(std::string text, int64_t context, uint64_t seed, std::string description);
  TokenWindows(std::unique_ptr<TokenSequence> tokens, int64_t context, uint64_t seed, std::string description);
  Batch batch(int64_t step, int64_t batch_size) override;
  std::string describe() const override { return description_; }

 private:
  std::unique_ptr<TokenSequence> tokens_;
  int64_t context_;
  uint64_t seed_;
  std::string description_;
};

// Uniformly random tokens (the reference workload for speed).
class RandomTokens : public DataSource {
 public:
  RandomTokens(int64_t vocab, int64_t context, uint64_t seed) : vocab_(vocab), context_(context), seed_(seed) {}
  Batch batch(int64_t step, int64_t batch_size) override;
  std::string describe() const override { return "synthetic random tokens"; }

 private:
  int64_t vocab_, context_;
  uint64_t seed_;
};

// Regression on x ~ N(0, I): y = A x / sqrt(in) + 0.5 tanh(C x / sqrt(in)) + 0.01 noise, with a
// fixed random teacher (A, C), the same for every seed. A linear model can learn only the first term;
// an MLP can learn both.
class SyntheticRegression : public DataSource {
 public:
  SyntheticRegression(int64_t in, int64_t out, uint64_t seed);
  Batch batch(int64_t step, int64_t batch_size) override;
  std::string describe() const override { return "synthetic regression"; }

 private:
  int64_t in_, out_;
  uint64_t seed_;
  std::vector<float> a_, c_;  // (out, in) teacher weights
};

// Labelled images, reshuffled every epoch with a counter-based permutation.
class ImageClassification : public DataSource {
 public:
  ImageClassification(ImageDataset data, bool flatten, uint64_t seed);
  Batch batch(int64_t step, int64_t batch_size) override;
  std::string describe() const override { return "Fashion-MNIST (train split)"; }
  const ImageDataset& data() const { return data_; }

 private:
  const std::vector<int64_t>& permutation(int64_t epoch);
  ImageDataset data_;
  bool flatten_;  // (B, 784) for the MLP instead of (B, 1, 28, 28)
  uint64_t seed_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> perm_;
};

// The data source a model and a --data value ask for: "synthetic", "fashion-mnist", "fortunes"
// (the demo text), a token file (text/token_file.h, mapped) or a path to a text file: byte-level
// tokens, or the ids of `tokenizer` when the model has one (tokenised in memory, with a progress line).
std::unique_ptr<DataSource> make_data_source(const std::string& spec, const Model& model, uint64_t seed,
                                             TextTokenizer* tokenizer = nullptr);

}  // namespace frugal
