#include "kernels/conv.h"

#include <cmath>
#include <cstring>

namespace frugal {

void im2col(const float* x, const ConvGeometry& g, float* col) {
  const int64_t H = g.height, W = g.width, Ho = g.out_h(), Wo = g.out_w();
  const int64_t kk = g.kernel_h * g.kernel_w;
  // Every col row is written by exactly one iteration, so rows parallelise without races.
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < g.channels * kk; ++r) {
    const int64_t c = r / kk, i = (r % kk) / g.kernel_w, j = r % g.kernel_w;
    const float* plane = x + c * H * W;  // (H, W)
    float* out = col + r * Ho * Wo;      // (Ho, Wo)
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const int64_t ih = oh * g.stride - g.pad + i;
      float* row = out + oh * Wo;
      if (ih < 0 || ih >= H) {
        std::memset(row, 0, static_cast<size_t>(Wo) * sizeof(float));
        continue;
      }
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const int64_t iw = ow * g.stride - g.pad + j;
        row[ow] = (iw >= 0 && iw < W) ? plane[ih * W + iw] : 0.0f;
      }
    }
  }
}

void col2im(const float* col, const ConvGeometry& g, float* dx) {
  const int64_t H = g.height, W = g.width, Ho = g.out_h(), Wo = g.out_w();
  // Taps (i, j) of one channel overlap in dx, so only channels run in parallel.
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < g.channels; ++c) {
    float* plane = dx + c * H * W;  // (H, W)
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const float* in = col + ((c * g.kernel_h + i) * g.kernel_w + j) * Ho * Wo;  // (Ho, Wo)
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const int64_t ih = oh * g.stride - g.pad + i;
          if (ih < 0 || ih >= H) continue;
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const int64_t iw = ow * g.stride - g.pad + j;
            if (iw >= 0 && iw < W) plane[ih * W + iw] += in[oh * Wo + ow];
          }
        }
      }
    }
  }
}

void maxpool2d_forward(const float* x, const PoolGeometry& g, float* y, int32_t* argmax) {
  const int64_t H = g.height, W = g.width, Ho = g.out_h(), Wo = g.out_w();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    const float* in = x + p * H * W;  // (H, W)
    for (int64_t oh = 0; oh < Ho; ++oh) {
      for (int64_t ow = 0; ow < Wo; ++ow) {
        int64_t best = oh * g.stride * W + ow * g.stride;
        float best_value = in[best];
        for (int64_t i = 0; i < g.kernel; ++i) {
          for (int64_t j = 0; j < g.kernel; ++j) {
            const int64_t at = (oh * g.stride + i) * W + ow * g.stride + j;
            const float v = in[at];
            // NaN propagates, as in PyTorch: the first NaN of the window wins.
            if (v > best_value || (std::isnan(v) && !std::isnan(best_value))) {
              best = at;
              best_value = v;
            }
          }
        }
        y[(p * Ho + oh) * Wo + ow] = best_value;
        argmax[(p * Ho + oh) * Wo + ow] = static_cast<int32_t>(best);
      }
    }
  }
}

void maxpool2d_backward(const float* dy, const int32_t* argmax, const PoolGeometry& g, float* dx) {
  const int64_t HW = g.height * g.width, HoWo = g.out_h() * g.out_w();
  // Overlapping windows (stride < kernel) can pick the same input twice: accumulate, and
  // parallelise over planes only.
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    float* out = dx + p * HW;
    std::memset(out, 0, static_cast<size_t>(HW) * sizeof(float));
    for (int64_t o = 0; o < HoWo; ++o) out[argmax[p * HoWo + o]] += dy[p * HoWo + o];
  }
}

void avgpool2d_forward(const float* x, const PoolGeometry& g, float* y) {
  const int64_t H = g.height, W = g.width, Ho = g.out_h(), Wo = g.out_w();
  const float inv = 1.0f / static_cast<float>(g.kernel * g.kernel);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    const float* in = x + p * H * W;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      for (int64_t ow = 0; ow < Wo; ++ow) {
        float s = 0.0f;
        for (int64_t i = 0; i < g.kernel; ++i)
          for (int64_t j = 0; j < g.kernel; ++j) s += in[(oh * g.stride + i) * W + ow * g.stride + j];
        y[(p * Ho + oh) * Wo + ow] = s * inv;
      }
    }
  }
}

void avgpool2d_backward(const float* dy, const PoolGeometry& g, float* dx) {
  const int64_t H = g.height, W = g.width, Ho = g.out_h(), Wo = g.out_w();
  const float inv = 1.0f / static_cast<float>(g.kernel * g.kernel);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    float* out = dx + p * H * W;
    std::memset(out, 0, static_cast<size_t>(H * W) * sizeof(float));
    for (int64_t oh = 0; oh < Ho; ++oh) {
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const float d = dy[(p * Ho + oh) * Wo + ow] * inv;
        for (int64_t i = 0; i < g.kernel; ++i)
          for (int64_t j = 0; j < g.kernel; ++j) out[(oh * g.stride + i) * W + ow * g.stride + j] += d;
      }
    }
  }
}

}  // namespace frugal
