#pragma once
// The token stream a language model trains on, whatever holds it: the bytes of a text (byte-level
// models), ids tokenised in memory (a BPE model given a text file), or a token file mapped from
// disk (text/token_file.h), never copied whole.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "text/token_file.h"

namespace frugal {

class TokenSequence {
 public:
  virtual ~TokenSequence() = default;
  virtual int64_t size() const = 0;
  // ids [start, start + n) into out.
  virtual void copy(int64_t start, int64_t n, int32_t* out) const = 0;
  // Every id is below this (256 for bytes).
  virtual int64_t vocab_bound() const = 0;
};

std::unique_ptr<TokenSequence> byte_sequence(std::string text);
std::unique_ptr<TokenSequence> id_sequence(std::vector<int32_t> ids, int64_t vocab_size);
std::unique_ptr<TokenSequence> token_file_sequence(const std::string& path);

}  // namespace frugal
