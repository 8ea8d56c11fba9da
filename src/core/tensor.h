#pragma once
// A tensor: a shared, ledger-accounted buffer plus a contiguous view (offset, shape <= 4-D, dtype).
// Views share the buffer (reshape, row ranges); the buffer is released when its last view goes.
// In a measuring ledger the buffer has no data: data() is null and kernels must not run.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "core/ledger.h"

namespace frugal {

class Shape {
 public:
  static constexpr int kMaxDims = 4;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  int ndim() const { return ndim_; }
  int64_t operator[](int i) const { return dims_[i < 0 ? i + ndim_ : i]; }
  int64_t numel() const;
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "[2, 3, 4]"
  // Same shape with dimension i replaced.
  Shape with(int i, int64_t size) const;

 private:
  std::array<int64_t, kMaxDims> dims_{};
  int ndim_ = 0;
};

// One allocation from a ledger; frees itself back to the same ledger.
class Buffer {
 public:
  Buffer(size_t bytes, MemCategory category);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return data_; }
  bool measured() const { return ledger_->measure_only(); }
  const MemoryLedger* ledger() const { return ledger_; }
  size_t bytes() const { return bytes_; }
  MemCategory category() const { return category_; }

 private:
  MemoryLedger* ledger_;
  void* data_;
  size_t bytes_;
  MemCategory category_;
};

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(const Shape& shape, DType dtype, MemCategory category);
  static Tensor zeros(const Shape& shape, DType dtype, MemCategory category);
  // A view of an existing buffer (mixed precision maps a tensor to its half-precision copy).
  static Tensor from_buffer(std::shared_ptr<Buffer> buffer, size_t offset_bytes, const Shape& shape, DType dtype);
  // A shape and a dtype with no memory behind them, in no run's books (MemoryLedger::shapes_only):
  // under ZeRO-3 a weight another rank holds.
  static Tensor placeholder(const Shape& shape, DType dtype);
  bool is_placeholder() const { return buffer_ && buffer_->ledger() == &MemoryLedger::shapes_only(); }

  bool defined() const { return buffer_ != nullptr; }
  // False when the buffer came from a measuring ledger (no memory behind it) or is empty.
  bool has_data() const { return buffer_ && buffer_->data(); }
  // True when the buffer came from a measuring ledger: layers allocate, then skip their kernels.
  bool measured() const { return buffer_ && buffer_->measured(); }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.ndim(); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  MemCategory category() const { return buffer_->category(); }
  const std::shared_ptr<Buffer>& buffer() const { return buffer_; }

  size_t offset_bytes() const { return offset_bytes_; }
  void* raw() const { return static_cast<char*>(buffer_->data()) + offset_bytes_; }
  float* f32() const;    // checks dtype
  int32_t* i32() const;  // checks dtype
  uint16_t* u16() const; // f16 or bf16 bits
  uint8_t* u8() const;    // checks dtype

  // Same data, new shape with the same number of elements.
  Tensor view(const Shape& shape) const;
  // Rows [begin, end) of dimension 0.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  // A new buffer (in `category`) holding a copy of this tensor's data.
  Tensor clone(MemCategory category) const;
  void fill_zero() const;
  void fill(float value) const;  // f32, f16 or bf16 (rounded); no-op without data (measure mode)
  void copy_from(const Tensor& src) const;  // same dtype and numel

 private:
  std::shared_ptr<Buffer> buffer_;
  size_t offset_bytes_ = 0;
  Shape shape_;
  DType dtype_ = DType::F32;
};

}  // namespace frugal
