// unmask/cpu/rope.hpp
//
// Applies rotary embeddings in place to x (rows, heads, head_dim), row r at
// absolute position positions[r]. The cos/sin of every (position, pair) is
// computed once into a table (rope_table) and shared by all heads and calls;
// the rotation runs vectorised over the pairs of a head
// (unmask/cpu/kernels/elementwise.inl).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "unmask/cpu/isa.hpp"
#include "unmask/cpu/parallel.hpp"
#include "unmask/cpu/simd/kernels.hpp"
#include "unmask/model/rotary.hpp"

namespace unmask::cpu {

// cos and sin for positions [0, count), pairs [0, head_dim / 2):
// table[(p * 2 + 0) * half + i] = cos, table[(p * 2 + 1) * half + i] = sin.
inline std::vector<float> rope_table(std::int64_t count, std::int64_t head_dim, float theta) {
  const std::int64_t half = head_dim / 2;
  std::vector<float> table(std::size_t(count * half * 2));
  parallel_for(0, count, [&](std::int64_t p) {
    for (std::int64_t i = 0; i < half; ++i) {
      const float angle = rope_angle(p, i, head_dim, theta);
      table[std::size_t((p * 2) * half + i)] = std::cos(angle);
      table[std::size_t((p * 2 + 1) * half + i)] = std::sin(angle);
    }
  }, 64 * half);
  return table;
}

// `table` from rope_table with count > every position.
inline void rope(float* x, std::int64_t rows, std::int64_t heads, std::int64_t head_dim,
                 const std::int32_t* positions, const std::vector<float>& table, isa_level level = default_isa()) {
  UNMASK_ISA_DISPATCH(level, isa::rope_rows<isa::ops>(x, rows, heads, head_dim, positions, table.data()));
}

}  // namespace unmask::cpu
