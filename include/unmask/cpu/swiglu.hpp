// unmask/cpu/swiglu.hpp
//
// SwiGLU (Shazeer 2020) as the llama / Qwen blocks compute it:
//   out = silu(gate) * up,  silu(g) = g * sigmoid(g) = g / (1 + e^-g)
// with gate = gate_proj(x) and up = up_proj(x), elementwise over n values;
// vectorised on the CPU with the kernels' exp (unmask/cpu/kernels/math.inl).
#pragma once

#include <cmath>
#include <cstdint>

#include "unmask/core/config.hpp"
#include "unmask/cpu/isa.hpp"
#include "unmask/cpu/simd/kernels.hpp"

namespace unmask {

UNMASK_HOST_DEVICE float silu(float g) { return g / (1.0f + expf(-g)); }

namespace cpu {

inline void swiglu(const float* gate, const float* up, std::int64_t n, float* out, isa_level level = default_isa()) {
  UNMASK_ISA_DISPATCH(level, isa::swiglu_values<isa::ops>(gate, up, n, out));
}

}  // namespace cpu
}  // namespace unmask
