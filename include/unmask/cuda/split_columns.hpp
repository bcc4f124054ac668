// unmask/cuda/split_columns.hpp
//
// The columns of a fused projection handed out to its parts: x (rows,
// width) row-major, width = sum of the parts' widths, becomes part p (rows,
// widths[p]) holding columns [offset_p, offset_p + widths[p]) of every row.
// The CUDA backend multiplies the Q, K and V (and the gate and up) weights,
// stored side by side as one (sum n, k) matrix, in one GEMM when few rows
// are fed (the weight-streaming regime, where three launches and three
// partial waves cost more than this copy), then splits the result. One block
// per row, threads striding over its columns; column_part_of is the host /
// device index math the host tests check. Pure copies: no rounding.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "unmask/cuda/vector_io.hpp"

namespace unmask::cuda {

inline constexpr int max_column_parts = 4;

template <class T>
struct column_parts {
  T* out[max_column_parts] = {};
  std::int64_t widths[max_column_parts] = {};
  int count = 0;
};

struct column_at {
  int part;
  std::int64_t col;  // within the part
};

// Which part column `col` of the fused row belongs to, and where in it
// (part == count: past the last part).
template <class T>
UNMASK_HOST_DEVICE column_at column_part_of(const column_parts<T>& parts, std::int64_t col) {
  int p = 0;
  while (p < parts.count && col >= parts.widths[p]) col -= parts.widths[p++];
  return {p, col};
}

template <class T>
__global__ void split_columns_kernel(const T* x, std::int64_t width, column_parts<T> parts) {
  const std::int64_t r = blockIdx.x;
  for (std::int64_t j = threadIdx.x; j < width; j += blockDim.x) {
    const column_at at = column_part_of(parts, j);
    parts.out[at.part][r * parts.widths[at.part] + at.col] = x[r * width + j];
  }
}

// Part p of x (rows, sum of widths) to parts.out[p] (rows, widths[p]).
// cudaErrorInvalidValue for rows outside [0, 2^31), no parts or more than
// max_column_parts, a width < 1, or a null pointer; cudaSuccess for rows 0.
template <class T>
cudaError_t split_columns(const T* x, std::int64_t rows, const column_parts<T>& parts, cudaStream_t stream) {
  if (rows < 0 || rows > INT32_MAX || parts.count < 1 || parts.count > max_column_parts) return cudaErrorInvalidValue;
  std::int64_t width = 0;
  for (int p = 0; p < parts.count; ++p) {
    if (parts.widths[p] < 1 || parts.out[p] == nullptr) return cudaErrorInvalidValue;
    width += parts.widths[p];
  }
  if (rows == 0) return cudaSuccess;
  if (x == nullptr) return cudaErrorInvalidValue;
  split_columns_kernel<T><<<unsigned(rows), 256, 0, stream>>>(x, width, parts);
  return launch_result();
}

}  // namespace unmask::cuda
