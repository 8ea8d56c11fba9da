#include "train/token_sequence.h"

#include <algorithm>

namespace frugal {

namespace {

class Bytes : public TokenSequence {
 public:
  explicit Bytes(std::string text) : text_(std::move(text)) {}
  int64_t size() const override { return static_cast<int64_t>(text_.size()); }
  void copy(int64_t start, int64_t n, int32_t* out) const override {
    for (int64_t k = 0; k < n; ++k) out[k] = static_cast<uint8_t>(text_[static_cast<size_t>(start + k)]);
  }
  int64_t vocab_bound() const override { return 256; }

 private:
  std::string text_;
};

class Ids : public TokenSequence {
 public:
  Ids(std::vector<int32_t> ids, int64_t vocab) : ids_(std::move(ids)), vocab_(vocab) {}
  int64_t size() const override { return static_cast<int64_t>(ids_.size()); }
  void copy(int64_t start, int64_t n, int32_t* out) const override {
    std::copy_n(ids_.begin() + start, n, out);
  }
  int64_t vocab_bound() const override { return vocab_; }

 private:
  std::vector<int32_t> ids_;
  int64_t vocab_;
};

class Mapped : public TokenSequence {
 public:
  explicit Mapped(const std::string& path) : file_(path) {}
  int64_t size() const override { return file_.size(); }
  void copy(int64_t start, int64_t n, int32_t* out) const override { file_.copy(start, n, out); }
  int64_t vocab_bound() const override { return file_.vocab_size(); }

 private:
  TokenFile file_;
};

}  // namespace

std::unique_ptr<TokenSequence> byte_sequence(std::string text) { return std::make_unique<Bytes>(std::move(text)); }
std::unique_ptr<TokenSequence> id_sequence(std::vector<int32_t> ids, int64_t vocab_size) {
  return std::make_unique<Ids>(std::move(ids), vocab_size);
}
std::unique_ptr<TokenSequence> token_file_sequence(const std::string& path) { return std::make_unique<Mapped>(path); }

}  // namespace frugal
