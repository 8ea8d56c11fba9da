#include "kernels/rope.h"

#include <cmath>

#include "core/error.h"

namespace frugal {

std::vector<float> rope_inverse_frequencies(int64_t head_dim, double theta) {
  check(head_dim > 0 && head_dim % 2 == 0, "rotary embedding: the head dimension must be even, not " +
                                               std::to_string(head_dim));
  check(theta > 1.0, "rotary embedding: rope_theta must be above 1");
  std::vector<float> out(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i)
    out[static_cast<size_t>(i)] = static_cast<float>(std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim)));
  return out;
}

std::vector<float> rope_llama3_scaling(const std::vector<float>& inverse_frequencies, double factor,
                                       double low_freq_factor, double high_freq_factor,
                                       double original_max_position_embeddings) {
  check(factor >= 1 && low_freq_factor > 0 && high_freq_factor > low_freq_factor && original_max_position_embeddings > 0,
        "rope_scaling llama3: needs factor >= 1, 0 < low_freq_factor < high_freq_factor and a positive "
        "original_max_position_embeddings");
  const double low_wavelength = original_max_position_embeddings / low_freq_factor;
  const double high_wavelength = original_max_position_embeddings / high_freq_factor;
  std::vector<float> out(inverse_frequencies.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const double f = inverse_frequencies[i], wavelength = 2 * M_PI / f;
    if (wavelength < high_wavelength) {
      out[i] = static_cast<float>(f);
    } else if (wavelength > low_wavelength) {
      out[i] = static_cast<float>(f / factor);
    } else {
      const double smooth = (original_max_position_embeddings / wavelength - low_freq_factor) /
                            (high_freq_factor - low_freq_factor);
      out[i] = static_cast<float>((1 - smooth) * f / factor + smooth * f);
    }
  }
  return out;
}

namespace {
// The angles of position `pos` (as Hugging Face computes them: the product in fp32) into cos_t and
// sin_t (head_dim / 2 each), sin negated for the inverse rotation.
void angles(int64_t pos, const std::vector<float>& inverse_frequencies, float sign, float* cos_t, float* sin_t) {
  for (size_t i = 0; i < inverse_frequencies.size(); ++i) {
    const float angle = static_cast<float>(pos) * inverse_frequencies[i];
    cos_t[i] = std::cos(angle);
    sin_t[i] = sign * std::sin(angle);
  }
}

// One row's `heads` heads rotated by those angles.
void rotate_row(float* row, int64_t heads, int64_t head_dim, const float* cos_t, const float* sin_t) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = row + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = v[i], c = v[i + half];
      v[i] = a * cos_t[i] - c * sin_t[i];
      v[i + half] = c * cos_t[i] + a * sin_t[i];
    }
  }
}
}  // namespace

void rope_apply(float* x, int64_t B, int64_t T, int64_t heads, int64_t head_dim, int64_t first_position,
                const std::vector<float>& inverse_frequencies, bool inverse, int64_t row_stride,
                const int32_t* positions) {
  const int64_t half = head_dim / 2;
  if (row_stride == 0) row_stride = heads * head_dim;
  check(static_cast<int64_t>(inverse_frequencies.size()) == half, "rotary embedding: frequencies for another head size");
  const float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel
  {
    std::vector<float> cos_t(static_cast<size_t>(half)), sin_t(static_cast<size_t>(half));  // per thread
    if (positions) {  // each row at its own position
#pragma omp for schedule(static)
      for (int64_t bt = 0; bt < B * T; ++bt) {
        angles(first_position + positions[bt], inverse_frequencies, sign, cos_t.data(), sin_t.data());
        rotate_row(x + bt * row_stride, heads, head_dim, cos_t.data(), sin_t.data());
      }
    } else {  // row t of every item at first_position + t: the angles once per t
#pragma omp for schedule(static)
      for (int64_t t = 0; t < T; ++t) {
        angles(first_position + t, inverse_frequencies, sign, cos_t.data(), sin_t.data());
        for (int64_t b = 0; b < B; ++b) rotate_row(x + (b * T + t) * row_stride, heads, head_dim, cos_t.data(), sin_t.data());
      }
    }
  }
}

}  // namespace frugal
