// unmask/cuda/bias.hpp
//
// A linear layer's bias on the GPU, the twin of unmask::cpu::add_bias:
//   y[r, j] += bias[j]   over y (rows, n) of T, the bias of W (uploaded weights)
// in fp32 and rounded once to T. One thread per element in a grid-stride
// loop of 256-thread blocks; the column is the flat index modulo n, so any
// row width works. The Qwen2 layout's q, k and v projections carry a bias.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "unmask/cuda/vector_io.hpp"

namespace unmask::cuda {

inline constexpr int bias_block = 256;
inline constexpr std::int64_t bias_max_blocks = 65535;

template <class T, class W, int Block>
__global__ void __launch_bounds__(Block) add_bias_kernel(T* y, const W* bias, std::int64_t total, std::int64_t n) {
  static_assert(is_element_v<T> && is_element_v<W>, "element types must be float, unmask::half or unmask::bfloat16");
  const std::int64_t stride = std::int64_t(gridDim.x) * Block;
  for (std::int64_t i = std::int64_t(blockIdx.x) * Block + threadIdx.x; i < total; i += stride)
    y[i] = from_float<T>(to_float(y[i]) + to_float(bias[i % n]));
}

// y (rows, n) += bias (n). Returns cudaErrorInvalidValue for null pointers or
// negative sizes, else the launch error.
template <class T, class W>
cudaError_t add_bias(T* y, const W* bias, std::int64_t rows, std::int64_t n, cudaStream_t stream) {
  if (rows < 0 || n < 0) return cudaErrorInvalidValue;
  if (rows == 0 || n == 0) return cudaSuccess;
  if (y == nullptr || bias == nullptr) return cudaErrorInvalidValue;
  const std::int64_t total = rows * n;
  std::int64_t blocks = (total + bias_block - 1) / bias_block;
  if (blocks > bias_max_blocks) blocks = bias_max_blocks;
  add_bias_kernel<T, W, bias_block><<<unsigned(blocks), bias_block, 0, stream>>>(y, bias, total, n);
  return launch_result();
}

}  // namespace unmask::cuda
