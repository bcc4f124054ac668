// unmask/cpu/rope.hpp
//
// Applies rotary embeddings in place to x (rows, heads, head_dim), row r at
// absolute position positions[r]. The cos/sin of each (position, pair) is
// computed once per call into a table and shared by all heads.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "unmask/cpu/parallel.hpp"
#include "unmask/model/rotary.hpp"

namespace unmask::cpu {

// cos and sin for positions [0, count): table[(p * half + i) * 2 + {0, 1}].
inline std::vector<float> rope_table(std::int64_t count, std::int64_t head_dim, float theta) {
  const std::int64_t half = head_dim / 2;
  std::vector<float> table(std::size_t(count * half * 2));
  parallel_for(0, count, [&](std::int64_t p) {
    for (std::int64_t i = 0; i < half; ++i) {
      const float angle = rope_angle(p, i, head_dim, theta);
      table[std::size_t((p * half + i) * 2)] = std::cos(angle);
      table[std::size_t((p * half + i) * 2 + 1)] = std::sin(angle);
    }
  }, 64 * half);
  return table;
}

// `table` from rope_table with count > every position.
inline void rope(float* x, std::int64_t rows, std::int64_t heads, std::int64_t head_dim,
                 const std::int32_t* positions, const std::vector<float>& table) {
  const std::int64_t half = head_dim / 2;
  parallel_for(0, rows, [&](std::int64_t r) {
    const float* cs = table.data() + std::int64_t(positions[r]) * half * 2;
    for (std::int64_t h = 0; h < heads; ++h) {
      float* v = x + (r * heads + h) * head_dim;
      for (std::int64_t i = 0; i < half; ++i) rope_rotate(v[i], v[i + half], cs[2 * i], cs[2 * i + 1]);
    }
  }, heads * head_dim);
}

}  // namespace unmask::cpu
