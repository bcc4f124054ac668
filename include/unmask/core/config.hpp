// unmask/core/config.hpp
//
// Build-wide macros. Every function that both backends share is marked
// UNMASK_HOST_DEVICE: under nvcc it expands to `__host__ __device__ inline`, so
// the same policy, schedule or conversion code runs inside a CUDA kernel; under
// a plain C++ compiler it is `inline`, so every header builds with g++ alone
// (the convention of CuTe's CUTE_HOST_DEVICE).
#pragma once

#define UNMASK_VERSION_MAJOR 0
#define UNMASK_VERSION_MINOR 1
#define UNMASK_VERSION_PATCH 0

#if defined(__CUDACC__)
#define UNMASK_HOST_DEVICE __host__ __device__ inline
#define UNMASK_DEVICE __device__ inline
#else
#define UNMASK_HOST_DEVICE inline
#define UNMASK_DEVICE inline
#endif

#if defined(__CUDA_ARCH__)
#define UNMASK_ON_DEVICE 1
#else
#define UNMASK_ON_DEVICE 0
#endif

namespace unmask {

// a * b and a + b rounded once each. nvcc contracts a * b + c into one fma
// by default, which rounds once and can differ from the CPU in the last bit;
// shared formulas whose result must be the same on both backends (schedule
// counts, sampling keys) use these. (GCC contracts too when built with
// -march=native and an FMA unit; the default x86-64 build does not.)
UNMASK_HOST_DEVICE float mul_rn(float a, float b) {
#if UNMASK_ON_DEVICE
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

UNMASK_HOST_DEVICE float add_rn(float a, float b) {
#if UNMASK_ON_DEVICE
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

}  // namespace unmask
