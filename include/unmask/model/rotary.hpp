// unmask/model/rotary.hpp
//
// Rotary position embedding in the half-rotation ("rotate_half", GPT-NeoX)
// form that LLaDA and Llama use: a head vector of dimension D is split into
// halves (x1, x2) and pair i is rotated by the angle pos * inv_freq[i], with
// inv_freq[i] = 1 / theta^(2i / D):
//   out[i]       = x1[i] cos - x2[i] sin
//   out[i + D/2] = x2[i] cos + x1[i] sin
// The frequencies and angles are computed in fp32 in the same order as the
// reference (LLaDA's RotaryEmbedding, transformers' LlamaRotaryEmbedding), so
// cos/sin agree with PyTorch to the last ulp or two at any position.
#pragma once

#include <cmath>
#include <cstdint>

#include "unmask/core/config.hpp"

namespace unmask {

UNMASK_HOST_DEVICE float rope_inv_freq(std::int64_t pair, std::int64_t head_dim, float theta) {
  const float exponent = float(2 * pair) / float(head_dim);
  return 1.0f / powf(theta, exponent);
}

UNMASK_HOST_DEVICE float rope_angle(std::int64_t position, std::int64_t pair, std::int64_t head_dim, float theta) {
  return float(position) * rope_inv_freq(pair, head_dim, theta);
}

// Rotates pair (x1, x2) by an angle given as its cosine and sine.
UNMASK_HOST_DEVICE void rope_rotate(float& x1, float& x2, float cos_a, float sin_a) {
  const float a = x1, b = x2;
  x1 = a * cos_a - b * sin_a;
  x2 = b * cos_a + a * sin_a;
}

}  // namespace unmask
