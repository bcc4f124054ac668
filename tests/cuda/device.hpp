// tests/cuda/device.hpp
//
// UNMASK_REQUIRE_DEVICE() skips the current test when no CUDA device is
// usable, so CUDA tests pass (as skipped) on machines without a GPU.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#define UNMASK_REQUIRE_DEVICE()                                                       \
  do {                                                                                \
    int unmask_device_count = 0;                                                      \
    if (cudaGetDeviceCount(&unmask_device_count) != cudaSuccess || unmask_device_count == 0) { \
      cudaGetLastError();                                                             \
      GTEST_SKIP() << "no CUDA device";                                               \
    }                                                                                 \
  } while (0)

#define UNMASK_CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call << ": " << cudaGetErrorString(cudaGetLastError())
