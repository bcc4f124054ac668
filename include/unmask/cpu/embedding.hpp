// unmask/cpu/embedding.hpp
//
// Embedding gather: out (rows, dim) = wte[tokens[r]] widened to fp32. Token
// ids are validated by the caller (the model checks every id against the
// vocabulary before the first kernel runs).
#pragma once

#include <cstdint>

#include "unmask/cpu/matmul.hpp"
#include "unmask/cpu/parallel.hpp"

namespace unmask::cpu {

inline void embedding(const std::int32_t* tokens, std::int64_t rows, const tensor_ref& wte, float* out) {
  const std::int64_t dim = wte.shape[1];
  parallel_for(0, rows, [&](std::int64_t r) { widen_rows(wte, tokens[r], 1, out + r * dim); }, dim);
}

}  // namespace unmask::cpu
