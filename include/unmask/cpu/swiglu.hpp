// unmask/cpu/swiglu.hpp
//
// SwiGLU (Shazeer 2020) as LLaDA's llama block computes it:
//   out = silu(gate) * up,  silu(g) = g * sigmoid(g) = g / (1 + e^-g)
// with gate = ff_proj(x) and up = up_proj(x), elementwise over n values.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "unmask/core/config.hpp"
#include "unmask/cpu/parallel.hpp"

namespace unmask {

UNMASK_HOST_DEVICE float silu(float g) { return g / (1.0f + expf(-g)); }

namespace cpu {

inline void swiglu(const float* gate, const float* up, std::int64_t n, float* out) {
  constexpr std::int64_t chunk = 4096;
  parallel_for(0, (n + chunk - 1) / chunk, [&](std::int64_t c) {
    const std::int64_t end = std::min(n, (c + 1) * chunk);
    for (std::int64_t i = c * chunk; i < end; ++i) out[i] = silu(gate[i]) * up[i];
  }, 8 * chunk);
}

}  // namespace cpu
}  // namespace unmask
