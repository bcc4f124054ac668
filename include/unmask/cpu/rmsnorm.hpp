// unmask/cpu/rmsnorm.hpp
//
// RMSNorm in fp32 (LLaDA's RMSLayerNorm, transformers' LlamaRMSNorm):
//   out = x * rsqrt(mean(x^2) + eps) * weight
// per row of x (rows, dim), vectorised for the run-time instruction set
// (unmask/cpu/kernels/elementwise.inl). The weight may be f32, f16 or bf16.
#pragma once

#include <cstdint>

#include "unmask/core/tensor_view.hpp"
#include "unmask/cpu/isa.hpp"
#include "unmask/cpu/simd/kernels.hpp"

namespace unmask::cpu {

inline void rmsnorm(const float* x, std::int64_t rows, std::int64_t dim, const tensor_ref& weight, float eps,
                    float* out, isa_level level = default_isa()) {
  UNMASK_ISA_DISPATCH(level, isa::rmsnorm_rows<isa::ops>(x, rows, dim, weight, eps, out));
}

}  // namespace unmask::cpu
