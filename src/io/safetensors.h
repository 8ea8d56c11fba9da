#pragma once
// safetensors reading and writing (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
// {string: string}}, then the raw little-endian tensor bytes. Files from PyTorch/HF load here and
// files written here load there.
//
// The reader memory-maps the file: only the tensors actually loaded are copied into ledger-
// accounted buffers, and the mapping itself is page cache, not training memory. Every problem with
// a file is a frugal::Error naming the file and (where there is one) the tensor.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/ledger.h"
#include "core/tensor.h"
#include "io/mapped_file.h"

namespace frugal {

// One validated header entry.
struct SafeTensor {
  std::string name;
  std::string file_dtype;  // as stored: "F32", "F16", "BF16", "I32", "I64" or "U8"
  DType dtype;             // frugal's type for it: I64 maps to I32 (what load() gives)
  Shape shape;
  uint64_t begin = 0;      // byte range [begin, end) within the data section
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Maps and validates the whole header; throws Error on any malformed or unsupported entry.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // Tensor names in data order (the order a writer stored them).
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  const SafeTensor& info(const std::string& name) const;  // Error if absent
  Shape shape(const std::string& name) const;
  std::string file_dtype(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Copies tensor `name` into a new buffer of category `cat` (from the current ledger).
  // Floating tensors (F32/F16/BF16) are converted to `want`, which must be F32, F16 or BF16.
  // Integer tensors (I32/I64) always load as I32, whatever `want` says (I64 values outside the
  // int32 range are an Error); asking for I32 from a floating tensor is an Error.
  // In a measuring ledger the result has no data and nothing is copied.
  Tensor load(const std::string& name, MemCategory cat, DType want = DType::F32) const;
  // Copies tensor `name` into an existing tensor of the same shape (converting floats to its dtype;
  // integers need an I32 destination), without a temporary buffer. Error naming the tensor on a
  // shape or dtype mismatch.
  void load_into(const std::string& name, const Tensor& dst) const;

 private:
  std::string path_;
  std::shared_ptr<const MappedFile> map_;
  const uint8_t* data_ = nullptr;  // start of the data section
  uint64_t data_size_ = 0;
  std::vector<SafeTensor> tensors_;  // sorted by begin
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (F32/F16/BF16/I32, stored as their own dtype) in the given order, with the
// header padded by spaces to a multiple of 8 bytes, atomically (see write_file_atomic). Names
// must be unique and not "__metadata__"; every tensor must hold data.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace frugal
