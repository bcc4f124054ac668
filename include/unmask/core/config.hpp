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
