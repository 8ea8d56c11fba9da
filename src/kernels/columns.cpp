#include "kernels/columns.h"

#include <cstring>

#include "core/error.h"

namespace frugal {

namespace {
// Copies rows x width elements between two row-major blocks with their own row strides (elements).
void copy_block(const char* src, int64_t src_stride, char* dst, int64_t dst_stride, int64_t rows, int64_t width,
                size_t element) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(dst + r * dst_stride * element, src + r * src_stride * element, width * element);
}
}  // namespace

Tensor concat_last(const std::vector<Tensor>& parts, MemCategory category) {
  check(!parts.empty(), "concat_last: nothing to concatenate");
  const Tensor& first = parts[0];
  int64_t total = 0;
  for (const Tensor& p : parts) {
    check(p.dtype() == first.dtype() && p.ndim() == first.ndim() && p.numel() / p.dim(-1) == first.numel() / first.dim(-1),
          "concat_last: parts of different types or leading shapes (" + first.shape().str() + ", " + p.shape().str() + ")");
    total += p.dim(-1);
  }
  Tensor out = Tensor::empty(first.shape().with(-1, total), first.dtype(), category);
  if (!first.has_data()) return out;
  const int64_t rows = first.numel() / first.dim(-1);
  const size_t element = dtype_size(first.dtype());
  int64_t column = 0;
  for (const Tensor& p : parts) {
    copy_block(static_cast<const char*>(p.raw()), p.dim(-1), static_cast<char*>(out.raw()) + column * element, total,
               rows, p.dim(-1), element);
    column += p.dim(-1);
  }
  return out;
}

std::vector<Tensor> split_last(const Tensor& t, const std::vector<int64_t>& widths, MemCategory category) {
  int64_t total = 0;
  for (int64_t w : widths) total += w;
  check(t.ndim() >= 1 && t.dim(-1) == total, "split_last: widths add up to " + std::to_string(total) + ", not the " +
                                                  std::to_string(t.dim(-1)) + " of " + t.shape().str());
  const int64_t rows = t.numel() / total;
  const size_t element = dtype_size(t.dtype());
  std::vector<Tensor> out;
  int64_t column = 0;
  for (int64_t w : widths) {
    out.push_back(Tensor::empty(t.shape().with(-1, w), t.dtype(), category));
    if (t.has_data())
      copy_block(static_cast<const char*>(t.raw()) + column * element, total, static_cast<char*>(out.back().raw()), w,
                 rows, w, element);
    column += w;
  }
  return out;
}

}  // namespace frugal
