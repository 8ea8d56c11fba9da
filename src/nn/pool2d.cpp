#include "nn/pool2d.h"

#include "core/error.h"
#include "kernels/conv.h"

namespace frugal {

namespace {

PoolGeometry input_geometry(const std::string& kind, const Tensor& x, int64_t kernel, int64_t stride) {
  check(x.dtype() == DType::F32, kind + ": expected an f32 input, got " + dtype_name(x.dtype()));
  check(x.ndim() == 4, kind + ": expected input [N, C, H, W], got " + x.shape().str());
  check(x.dim(2) >= kernel && x.dim(3) >= kernel,
        kind + ": input " + x.shape().str() + " is smaller than the " + std::to_string(kernel) + "x" +
            std::to_string(kernel) + " window");
  return PoolGeometry{x.dim(0) * x.dim(1), x.dim(2), x.dim(3), kernel, stride};
}

// The geometry of the last forward, applied to the batch of `dy` (micro-batches may differ in N).
PoolGeometry gradient_geometry(const std::string& kind, const Tensor& dy, int64_t in_h, int64_t in_w,
                               int64_t kernel, int64_t stride) {
  check(in_h > 0, kind + ": backward before any forward");
  const PoolGeometry g{dy.ndim() == 4 ? dy.dim(0) * dy.dim(1) : 0, in_h, in_w, kernel, stride};
  check(dy.dtype() == DType::F32 && dy.ndim() == 4 && dy.dim(2) == g.out_h() && dy.dim(3) == g.out_w(),
        kind + ": gradient " + dy.shape().str() + " does not match the output of a " +
            std::to_string(in_h) + "x" + std::to_string(in_w) + " input");
  return g;
}

void check_window(const std::string& kind, int64_t kernel, int64_t stride) {
  check(kernel > 0 && stride > 0, kind + ": kernel size and stride must be positive");
}

}  // namespace

MaxPool2d::MaxPool2d(int64_t kernel_size, int64_t stride)
    : kernel_(kernel_size), stride_(stride == 0 ? kernel_size : stride) {
  check_window("maxpool2d", kernel_, stride_);
}

Tensor MaxPool2d::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  const PoolGeometry g = input_geometry("maxpool2d", x, kernel_, stride_);  // x: (N, C, H, W)
  const Shape out{x.dim(0), x.dim(1), g.out_h(), g.out_w()};
  Tensor y = Tensor::empty(out, DType::F32, MemCategory::Activations);       // (N, C, Ho, Wo)
  Tensor argmax = Tensor::empty(out, DType::I32, MemCategory::Activations);  // (N, C, Ho, Wo)
  saved.tensors = {argmax};
  saved.shapes = {x.shape()};
  if (measuring(x)) return y;
  maxpool2d_forward(x.f32(), g, y.f32(), argmax.i32());
  return y;
}

Tensor MaxPool2d::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  check(saved.tensors.size() == 1 && saved.shapes.size() == 1, "maxpool2d: backward without a saved forward");
  const int64_t in_h = saved.shapes[0][2], in_w = saved.shapes[0][3];
  const PoolGeometry g = gradient_geometry("maxpool2d", dy, in_h, in_w, kernel_, stride_);
  const Tensor& argmax = saved.tensors[0];  // (N, C, Ho, Wo)
  check(argmax.shape() == dy.shape(), "maxpool2d: gradient " + dy.shape().str() +
                                          " does not match the forward output " + argmax.shape().str());
  Tensor dx = Tensor::empty({dy.dim(0), dy.dim(1), in_h, in_w}, DType::F32, MemCategory::Workspace);
  if (measuring(dy)) return dx;
  maxpool2d_backward(dy.f32(), argmax.i32(), g, dx.f32());
  return dx;
}

AvgPool2d::AvgPool2d(int64_t kernel_size, int64_t stride)
    : kernel_(kernel_size), stride_(stride == 0 ? kernel_size : stride) {
  check_window("avgpool2d", kernel_, stride_);
}

Tensor AvgPool2d::forward(const Tensor& x, Saved& saved, const RunContext& rc) {
  const PoolGeometry g = input_geometry("avgpool2d", x, kernel_, stride_);  // x: (N, C, H, W)
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), g.out_h(), g.out_w()}, DType::F32,
                           MemCategory::Activations);  // (N, C, Ho, Wo)
  saved.clear();
  saved.shapes = {x.shape()};  // backward needs only the input's geometry
  if (measuring(x)) return y;
  avgpool2d_forward(x.f32(), g, y.f32());
  return y;
}

Tensor AvgPool2d::backward(const Tensor& dy, Saved& saved, const RunContext& rc) {
  check(saved.shapes.size() == 1, "avgpool2d: backward without a saved forward");
  const int64_t in_h = saved.shapes[0][2], in_w = saved.shapes[0][3];
  const PoolGeometry g = gradient_geometry("avgpool2d", dy, in_h, in_w, kernel_, stride_);
  Tensor dx = Tensor::empty({dy.dim(0), dy.dim(1), in_h, in_w}, DType::F32, MemCategory::Workspace);
  if (measuring(dy)) return dx;
  avgpool2d_backward(dy.f32(), g, dx.f32());
  return dx;
}

}  // namespace frugal
