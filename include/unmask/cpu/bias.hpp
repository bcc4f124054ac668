// unmask/cpu/bias.hpp
//
// A linear layer's bias: y[r, j] += bias[j] over the rows of y (rows, n),
// with the bias in its file dtype (f32, f16 or bf16), vectorised for the
// run-time instruction set (unmask/cpu/kernels/elementwise.inl). The Qwen2
// layout's q, k and v projections carry one (transformers' Qwen2Attention).
#pragma once

#include <cstdint>

#include "unmask/core/tensor_view.hpp"
#include "unmask/cpu/isa.hpp"
#include "unmask/cpu/simd/kernels.hpp"

namespace unmask::cpu {

inline void add_bias(float* y, std::int64_t rows, std::int64_t n, const tensor_ref& bias,
                     isa_level level = default_isa()) {
  UNMASK_ISA_DISPATCH(level, isa::add_bias_rows<isa::ops>(y, rows, n, bias));
}

}  // namespace unmask::cpu
