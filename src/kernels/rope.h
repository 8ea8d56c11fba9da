#pragma once
// Rotary position embedding (Su et al. 2021, "RoFormer"), in the layout Hugging Face's Llama uses
// (rotate_half): within a head of dimension d, value i and value i + d/2 form a pair rotated by the
// angle position * theta^(-2i/d):
//   x_i' = x_i cos - x_{i+d/2} sin,   x_{i+d/2}' = x_{i+d/2} cos + x_i sin.
// A rotation's transpose is the rotation by the opposite angle, so the backward pass is `inverse`.
#include <cstdint>
#include <vector>

namespace frugal {

// theta^(-2i/d) for i < d/2 (rope_theta: 10000 in Llama 2, 500000 in Llama 3). d must be even.
std::vector<float> rope_inverse_frequencies(int64_t head_dim, double theta);

// Llama 3's rope_scaling (type "llama3"): frequencies whose wavelength exceeds
// original_max_position_embeddings / low_freq_factor are divided by `factor`, those shorter than
// original / high_freq_factor kept, and the band between interpolated smoothly (as Hugging Face's
// _compute_llama3_parameters).
std::vector<float> rope_llama3_scaling(const std::vector<float>& inverse_frequencies, double factor,
                                       double low_freq_factor, double high_freq_factor,
                                       double original_max_position_embeddings);

// x (B, T, heads, head_dim) in place: row (b, t) sits at position first_position + t. inverse: the
// rotation by minus the angle (dL/dx from dL/dx'). row_stride: floats from row (b, t) to the next
// (0: heads * head_dim), so the heads may be the first columns of a wider row (q and k inside qkv).
// positions (or null): (B, T), row (b, t) at first_position + positions[b * T + t] instead (packed
// examples, each restarting at 0).
void rope_apply(float* x, int64_t B, int64_t T, int64_t heads, int64_t head_dim, int64_t first_position,
                const std::vector<float>& inverse_frequencies, bool inverse = false, int64_t row_stride = 0,
                const int32_t* positions = nullptr);

}  // namespace frugal
