// unmask/cpu/embedding.hpp
//
// Embedding gather: out (rows, dim) = wte[tokens[r]] widened to fp32,
// vectorised (unmask/cpu/kernels/elementwise.inl). Token ids are validated
// by the caller (the model checks every id against the vocabulary before
// the first kernel runs).
#pragma once

#include <cstdint>

#include "unmask/core/tensor_view.hpp"
#include "unmask/cpu/isa.hpp"
#include "unmask/cpu/simd/kernels.hpp"

namespace unmask::cpu {

inline void embedding(const std::int32_t* tokens, std::int64_t rows, const tensor_ref& wte, float* out,
                      isa_level level = default_isa()) {
  UNMASK_ISA_DISPATCH(level, isa::embedding_rows<isa::ops>(tokens, rows, wte, out));
}

}  // namespace unmask::cpu
