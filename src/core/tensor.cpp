#include "core/tensor.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/half.h"

namespace frugal {

Shape::Shape(std::initializer_list<int64_t> dims) {
  check(dims.size() <= kMaxDims, "tensor shapes have at most 4 dimensions");
  for (int64_t d : dims) {
    check(d >= 0, "negative tensor dimension");
    dims_[ndim_++] = d;
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim_; ++i)  // the message only on overflow: numel() runs in inner loops
    if (__builtin_mul_overflow(n, dims_[i], &n)) throw Error("tensor shape " + str() + " has too many elements");
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (ndim_ != o.ndim_) return false;
  for (int i = 0; i < ndim_; ++i)
    if (dims_[i] != o.dims_[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < ndim_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
  return s + "]";
}

Shape Shape::with(int i, int64_t size) const {
  Shape s = *this;
  s.dims_[i < 0 ? i + ndim_ : i] = size;
  return s;
}

namespace {
size_t checked_bytes(const Shape& shape, DType dtype) {
  size_t bytes = 0;
  check(!__builtin_mul_overflow(static_cast<size_t>(shape.numel()), dtype_size(dtype), &bytes),
        "tensor shape " + shape.str() + " is too large");
  return bytes;
}
}  // namespace

Buffer::Buffer(size_t bytes, MemCategory category)
    : ledger_(&MemoryLedger::current()), bytes_(bytes), category_(category) {
  data_ = ledger_->allocate(bytes, category);
}

Buffer::~Buffer() { ledger_->release(data_, bytes_, category_); }

Tensor Tensor::empty(const Shape& shape, DType dtype, MemCategory category) {
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.buffer_ = std::make_shared<Buffer>(checked_bytes(shape, dtype), category);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, MemCategory category) {
  Tensor t = empty(shape, dtype, category);
  t.fill_zero();
  return t;
}

Tensor Tensor::placeholder(const Shape& shape, DType dtype) {
  LedgerScope scope(MemoryLedger::shapes_only());
  return empty(shape, dtype, MemCategory::Params);
}

Tensor Tensor::from_buffer(std::shared_ptr<Buffer> buffer, size_t offset_bytes, const Shape& shape, DType dtype) {
  check(buffer != nullptr && offset_bytes + static_cast<size_t>(shape.numel()) * dtype_size(dtype) <= buffer->bytes(),
        "view " + shape.str() + " does not fit its buffer");
  Tensor t;
  t.buffer_ = std::move(buffer);
  t.offset_bytes_ = offset_bytes;
  t.shape_ = shape;
  t.dtype_ = dtype;
  return t;
}

float* Tensor::f32() const {
  check(dtype_ == DType::F32, "expected an f32 tensor, got " + dtype_name(dtype_));
  return static_cast<float*>(raw());
}

int32_t* Tensor::i32() const {
  check(dtype_ == DType::I32, "expected an i32 tensor, got " + dtype_name(dtype_));
  return static_cast<int32_t*>(raw());
}

uint8_t* Tensor::u8() const {
  check(dtype_ == DType::U8, "expected a u8 tensor, got " + dtype_name(dtype_));
  return static_cast<uint8_t*>(raw());
}

uint16_t* Tensor::u16() const {
  check(dtype_ == DType::F16 || dtype_ == DType::BF16, "expected an f16/bf16 tensor, got " + dtype_name(dtype_));
  return static_cast<uint16_t*>(raw());
}

Tensor Tensor::view(const Shape& shape) const {
  check(shape.numel() == numel(), "view " + shape.str() + " does not fit " + shape_.str());
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  check(ndim() >= 1 && 0 <= begin && begin <= end && end <= dim(0), "row slice out of range");
  Tensor t = *this;
  const int64_t row = dim(0) ? numel() / dim(0) : 0;
  t.offset_bytes_ += static_cast<size_t>(begin * row) * dtype_size(dtype_);
  t.shape_ = shape_.with(0, end - begin);
  return t;
}

Tensor Tensor::clone(MemCategory category) const {
  Tensor t = empty(shape_, dtype_, category);
  t.copy_from(*this);
  return t;
}

void Tensor::fill_zero() const {
  if (has_data()) std::memset(raw(), 0, nbytes());
}

void Tensor::fill(float value) const {
  if (!has_data()) return;
  if (dtype_ == DType::F16 || dtype_ == DType::BF16) {  // a parameter born in a half type
    const uint16_t bits = dtype_ == DType::F16 ? f32_to_f16(value) : f32_to_bf16(value);
    std::fill(u16(), u16() + numel(), bits);
    return;
  }
  float* p = f32();
  for (int64_t i = 0; i < numel(); ++i) p[i] = value;
}

void Tensor::copy_from(const Tensor& src) const {
  check(src.dtype_ == dtype_ && src.numel() == numel(), "copy between mismatched tensors");
  if (has_data() && src.has_data()) std::memcpy(raw(), src.raw(), nbytes());
}

}  // namespace frugal
