// tests/cuda/mma_emulation.hpp
//
// A warp's tensor-core instructions emulated on the host, written from the
// PTX ISA's own description in the form it gives it (not from
// unmask/cuda/mma.hpp, whose layout functions the tests check against these):
// - mma.m16n8k16 with .f16 / .bf16 A and B and .f32 C ("Matrix fragments for
//   mma.m16n8k16 with floating point type"): groupID = laneid >> 2,
//   threadID_in_group = laneid % 4;
//   A: row = groupID for a0, a1, a4, a5, groupID + 8 for a2, a3, a6, a7;
//      col = threadID_in_group * 2 + (i & 1) for a0..a3, the same + 8 for a4..a7;
//   B: row = threadID_in_group * 2 + (i & 1) for b0, b1, the same + 8 for b2, b3;
//      col = groupID;
//   C: row = groupID for c0, c1, groupID + 8 for c2, c3;
//      col = threadID_in_group * 2 + (i & 1).
//   Element a_i sits in register i / 2, in its low 16 bits when i is even.
// - ldmatrix.m8n8.x4{.trans}.b16 ("ldmatrix"): threads 8m .. 8m + 7 give the
//   addresses of rows 0..7 of matrix m; register m of every thread receives
//   matrix m, thread 4r + w holding word w (elements 2w, 2w + 1) of row r;
//   .trans delivers each matrix transposed.
// Products and sums are formed in float in index order; the hardware's order
// and internal precision differ only within rounding.
#pragma once

#include <cstdint>

#include "unmask/core/dtype.hpp"

namespace unmask::test::warp {

struct position {
  int row;
  int col;
};

inline position mma_a(int lane, int i) {
  const int group = lane >> 2, thread = lane % 4;
  position p;
  p.row = (i < 2 || (i >= 4 && i < 6)) ? group : group + 8;
  p.col = i < 4 ? thread * 2 + (i & 1) : thread * 2 + (i & 1) + 8;
  return p;
}
inline position mma_b(int lane, int i) {
  const int group = lane >> 2, thread = lane % 4;
  return {i < 2 ? thread * 2 + (i & 1) : thread * 2 + (i & 1) + 8, group};
}
inline position mma_c(int lane, int i) {
  const int group = lane >> 2, thread = lane % 4;
  return {i < 2 ? group : group + 8, thread * 2 + (i & 1)};
}

template <class T>
float element(std::uint32_t reg, int i) {
  T x;
  x.bits = std::uint16_t(i % 2 == 0 ? reg & 0xffffu : reg >> 16);
  return to_float(x);
}

// c (per lane, 4 floats) += a (per lane, 4 registers) b (per lane, 2 registers).
template <class T>
void mma_16x8x16(float (&c)[32][4], const std::uint32_t (&a)[32][4], const std::uint32_t (&b)[32][2]) {
  float A[16][16], B[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) {
      const position p = mma_a(lane, i);
      A[p.row][p.col] = element<T>(a[lane][i / 2], i);
    }
    for (int i = 0; i < 4; ++i) {
      const position p = mma_b(lane, i);
      B[p.row][p.col] = element<T>(b[lane][i / 2], i);
    }
  }
  for (int lane = 0; lane < 32; ++lane)
    for (int i = 0; i < 4; ++i) {
      const position p = mma_c(lane, i);
      float sum = 0.0f;
      for (int k = 0; k < 16; ++k) sum += A[p.row][k] * B[k][p.col];
      c[lane][i] += sum;
    }
}

// rows[l]: the 8 consecutive 16-bit elements lane l addresses.
template <class T>
void ldmatrix_x4(const T* const (&rows)[32], bool trans, std::uint32_t (&r)[32][4]) {
  for (int m = 0; m < 4; ++m) {
    std::uint16_t matrix[8][8];
    for (int row = 0; row < 8; ++row)
      for (int col = 0; col < 8; ++col) {
        const std::uint16_t bits = rows[8 * m + row][col].bits;
        if (trans) matrix[col][row] = bits;
        else matrix[row][col] = bits;
      }
    for (int lane = 0; lane < 32; ++lane) {
      const int row = lane / 4, word = lane % 4;
      r[lane][m] = std::uint32_t(matrix[row][2 * word]) | (std::uint32_t(matrix[row][2 * word + 1]) << 16);
    }
  }
}

}  // namespace unmask::test::warp
