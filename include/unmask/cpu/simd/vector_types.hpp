// unmask/cpu/simd/vector_types.hpp
//
// The vector types of the CPU kernels (GCC/Clang vector extensions, which the
// compiler lowers to the registers of whatever instruction set the enclosing
// function targets) and the forced-inline marker their operations carry.
// Types have no target of their own, so these are shared by every level.
#pragma once

#include <cstdint>

// Kernels that are big enough to stay functions of their own are marked
// noinline: the compiler then optimises each on its own rather than one
// dispatching function holding every variant, which compiles far faster.
#if defined(__GNUC__) || defined(__clang__)
#define UNMASK_SIMD_INLINE inline __attribute__((always_inline))
#define UNMASK_SIMD_NOINLINE inline __attribute__((noinline))
#else
#define UNMASK_SIMD_INLINE inline
#define UNMASK_SIMD_NOINLINE inline
#endif

// Full unrolling of the register-tile loops, so every accumulator stays in a
// register (nvcc's front end does not pass the pragma on; GCC then unrolls
// these constant-count loops by itself at -O2).
#if defined(__CUDACC__) || !(defined(__GNUC__) || defined(__clang__))
#define UNMASK_CPU_UNROLL
#else
#define UNMASK_CPU_UNROLL _Pragma("GCC unroll 16")
#endif

namespace unmask::cpu::simd {

typedef float f32x8 __attribute__((vector_size(32)));
typedef std::int32_t i32x8 __attribute__((vector_size(32)));
typedef std::uint32_t u32x8 __attribute__((vector_size(32)));
typedef std::uint16_t u16x8 __attribute__((vector_size(16)));
typedef float f32x16 __attribute__((vector_size(64)));
typedef std::int32_t i32x16 __attribute__((vector_size(64)));
typedef std::uint32_t u32x16 __attribute__((vector_size(64)));
typedef std::uint16_t u16x16 __attribute__((vector_size(32)));

template <int N> struct vector_types;
template <> struct vector_types<8> {
  using vf = f32x8;
  using vi = i32x8;
  using vu = u32x8;
  using vh = u16x8;  // N 16-bit values
};
template <> struct vector_types<16> {
  using vf = f32x16;
  using vi = i32x16;
  using vu = u32x16;
  using vh = u16x16;
};

}  // namespace unmask::cpu::simd
