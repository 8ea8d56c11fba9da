// Compiled with -ffast-math (CMakeLists.txt): that is what makes glibc declare its vector math
// library (libmvec), so the loops below call 8- or 16-wide tanhf instead of one scalar tanhf per
// element, which took a quarter of a GPT training step. Nothing here depends on IEEE corner
// cases: there are no reductions to reorder. (-ffinite-math-only means NaN inputs are not
// guaranteed to propagate through GELU; non-finite values are caught at the loss.)
#include "kernels/gelu.h"

#include <algorithm>
#include <cmath>

#include "kernels/convert.h"

namespace frugal {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
}  // namespace

namespace {

void gelu_range(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float inner = kSqrt2OverPi * (v + kGeluCubic * v * v * v);
    y[i] = 0.5f * v * (1.0f + tanhf(inner));
  }
}

void gelu_backward_range(const float* x, const float* dy, float* dx, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float inner = kSqrt2OverPi * (v + kGeluCubic * v * v * v);
    const float t = tanhf(inner);
    const float sech2 = 1.0f - t * t;
    const float d_inner = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * v * v);
    dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * sech2 * d_inner);
  }
}

constexpr int64_t kChunk = 2048;  // floats widened at a time: stays in L1 with its output

// body(begin, end) over chunks, in parallel.
template <typename Body>
void chunks(int64_t n, Body body) {
#pragma omp parallel for schedule(static)
  for (int64_t begin = 0; begin < n; begin += kChunk) body(begin, std::min(n, begin + kChunk));
}

}  // namespace

void gelu_forward(const float* x, float* y, int64_t n) {
  chunks(n, [&](int64_t b, int64_t e) { gelu_range(x + b, y + b, e - b); });
}

void gelu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  chunks(n, [&](int64_t b, int64_t e) { gelu_backward_range(x + b, dy + b, dx + b, e - b); });
}

void gelu_forward_half(DType type, const uint16_t* x, uint16_t* y, int64_t n) {
  chunks(n, [&](int64_t b, int64_t e) {
    float xs[kChunk], ys[kChunk];
    half_to_float(x + b, type, xs, e - b);
    gelu_range(xs, ys, e - b);
    float_to_half(ys, type, y + b, e - b);
  });
}

void gelu_backward_half(DType type, const uint16_t* x, const float* dy, float* dx, int64_t n) {
  chunks(n, [&](int64_t b, int64_t e) {
    float xs[kChunk];
    half_to_float(x + b, type, xs, e - b);
    gelu_backward_range(xs, dy + b, dx + b, e - b);
  });
}

void gelu_backward_half(DType type, const uint16_t* x, const uint16_t* dy, uint16_t* dx, int64_t n) {
  chunks(n, [&](int64_t b, int64_t e) {
    float xs[kChunk], gs[kChunk];
    half_to_float(x + b, type, xs, e - b);
    half_to_float(dy + b, type, gs, e - b);
    gelu_backward_range(xs, gs, gs, e - b);  // in place: element i reads dy[i] before writing dx[i]
    float_to_half(gs, type, dx + b, e - b);
  });
}

}  // namespace frugal
