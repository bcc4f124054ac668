// unmask/cpu/rmsnorm.hpp
//
// RMSNorm in fp32 (LLaDA's RMSLayerNorm, transformers' LlamaRMSNorm):
//   out = x * rsqrt(mean(x^2) + eps) * weight
// per row of x (rows, dim). The weight may be f32, f16 or bf16.
#pragma once

#include <cmath>
#include <cstdint>

#include "unmask/core/dtype.hpp"
#include "unmask/core/tensor_view.hpp"
#include "unmask/cpu/parallel.hpp"

namespace unmask::cpu {

inline void rmsnorm(const float* x, std::int64_t rows, std::int64_t dim, const tensor_ref& weight, float eps,
                    float* out) {
  parallel_for(0, rows, [&](std::int64_t r) {
    const float* xr = x + r * dim;
    float* yr = out + r * dim;
    double sum = 0;
    for (std::int64_t i = 0; i < dim; ++i) sum += double(xr[i]) * xr[i];
    const float scale = 1.0f / std::sqrt(float(sum / double(dim)) + eps);
    for (std::int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] * scale) * load_as_float(weight.data, weight.type, i);
  }, 2 * dim);
}

}  // namespace unmask::cpu
