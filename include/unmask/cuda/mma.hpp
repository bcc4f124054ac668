// unmask/cuda/mma.hpp
//
// Warp-level tensor-core tiles: the register layouts of
// mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32 and of
// ldmatrix.sync.aligned.m8n8.x4{,.trans}.shared.b16 (PTX ISA, "Matrix
// fragments for mma.m16n8k16 with floating point type" and "ldmatrix"; sm_80
// and newer), as host/device functions, and the two instructions themselves.
// A warp multiplies A (16 x 16, row-major) by B (16 x 8, "col": k down, n
// across) into C (16 x 8, fp32). Lanes form 8 groups of 4: group g = lane / 4,
// thread t = lane % 4 within it. Each lane holds 8 elements of A in four
// 32-bit registers (two 16-bit halves each, the lower column in the low half),
// 4 of B in two registers and 4 floats of C:
//   A element e (0..7): row g + 8 * ((e / 2) % 2), column 2t + e % 2 + 8 * (e / 4)
//   B element e (0..3): row (k) 2t + e % 2 + 8 * (e / 2), column (n) g
//   C element e (0..3): row g + 8 * (e / 2),           column 2t + e % 2
// The C layout of two adjacent 8-column tiles is the A layout of one 16-column
// chunk, so softmax probabilities computed in C registers feed the next
// multiplication without moving (FlashAttention-2, Dao 2023, section 3.3).
// ldmatrix .x4 loads four 8 x 8 matrices of 16-bit elements from shared
// memory: lane l gives the address of row l % 8 of matrix l / 8 (16
// contiguous bytes, 16-byte aligned), and register i of lane l receives
// matrix i's elements (row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1); with
// .trans the matrix is transposed first, so the lane receives (rows
// 2 (l % 4) and 2 (l % 4) + 1, column l / 4). The layouts are what the host
// tests check against an emulated warp (tests/cuda/mma_emulation.hpp,
// written from the PTX tables independently of these functions).
#pragma once

#include <cstdint>
#include <type_traits>

#include "unmask/cuda/vector_io.hpp"

namespace unmask::cuda::mma {

// Element types a tensor-core tile multiplies (fp32 accumulation).
template <class T>
inline constexpr bool is_tile_element_v = std::is_same_v<T, half> || std::is_same_v<T, bfloat16>;

struct element_at {
  int row;
  int col;
};

UNMASK_HOST_DEVICE int group_of(int lane) { return lane >> 2; }
UNMASK_HOST_DEVICE int thread_of(int lane) { return lane & 3; }

// A (16 x 16): element e of lane, e = 2 * register + half.
UNMASK_HOST_DEVICE element_at a_element(int lane, int e) {
  return {group_of(lane) + 8 * ((e >> 1) & 1), 2 * thread_of(lane) + (e & 1) + 8 * (e >> 2)};
}
// B (16 x 8, k x n): element e of lane, e = 2 * register + half.
UNMASK_HOST_DEVICE element_at b_element(int lane, int e) {
  return {2 * thread_of(lane) + (e & 1) + 8 * (e >> 1), group_of(lane)};
}
// C (16 x 8): float e of lane.
UNMASK_HOST_DEVICE element_at c_element(int lane, int e) {
  return {group_of(lane) + 8 * (e >> 1), 2 * thread_of(lane) + (e & 1)};
}

// ldmatrix .x4: the row of which matrix a lane gives the address of.
struct ldmatrix_source {
  int matrix;
  int row;
};
UNMASK_HOST_DEVICE ldmatrix_source ldmatrix_source_of(int lane) { return {lane >> 3, lane & 7}; }

// Two floats as one register of two 16-bit T, lo in the low half, each rounded
// to nearest even (the project's conversions on the host, cvt.rn on the device).
template <class T>
UNMASK_HOST_DEVICE std::uint32_t pack2(float lo, float hi) {
  static_assert(is_tile_element_v<T>, "tiles hold half or bfloat16");
#if UNMASK_ON_DEVICE && __CUDA_ARCH__ >= 800
  std::uint32_t r;
  if constexpr (std::is_same_v<T, bfloat16>)
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  else
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
#else
  return std::uint32_t(from_float<T>(lo).bits) | (std::uint32_t(from_float<T>(hi).bits) << 16);
#endif
}

// c += a b for one 16 x 8 x 16 tile (sm_80 and newer; a trap below that,
// which the launchers never reach: they check the device first).
template <class T>
__device__ inline void mma_16x8x16(float (&c)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
  static_assert(is_tile_element_v<T>, "tiles hold half or bfloat16");
#if __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, bfloat16>)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();
#endif
}

__device__ inline std::uint32_t shared_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

// Four 8 x 8 matrices from shared memory; `row` is this lane's source row
// (ldmatrix_source_of). Trans: each matrix transposed on the way.
template <bool Trans>
__device__ inline void ldmatrix_x4(std::uint32_t (&r)[4], const void* row) {
#if __CUDA_ARCH__ >= 800
  if constexpr (Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
#else
  (void)row;
  r[0] = r[1] = r[2] = r[3] = 0;
  __trap();
#endif
}

// 16 bytes global -> shared without passing through registers (cp.async.cg,
// L2 only); valid false fills the 16 bytes with zeros and reads nothing.
__device__ inline void copy_async_16(void* shared_dst, const void* global_src, bool valid) {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(shared_address(shared_dst)),
               "l"(global_src), "r"(valid ? 16 : 0));
#else
  (void)shared_dst, (void)global_src, (void)valid;
  __trap();
#endif
}
__device__ inline void copy_async_commit() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;");
#endif
}
// Waits until at most Pending committed groups are still in flight.
template <int Pending>
__device__ inline void copy_async_wait() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;" ::"n"(Pending));
#endif
}

}  // namespace unmask::cuda::mma
