// unmask/cuda/rows.hpp
//
// Row moves of the forward pass, the GPU twins of the CPU backend's loops:
//   scatter_rows       src (batch, seq_len, width): the first lengths[b] rows
//                      of sequence b go to dst (slots, capacity, width) at
//                      slot slots[b], rows offsets[b] + i (K/V into a cache);
//   gather_rows        dst (count, width) = src rows rows[i] (the rows whose
//                      logits are wanted);
//   zero_padding_rows  rows i >= lengths[b] of x (batch, seq_len, width) = 0.
// One block per row, threads striding over the row's elements; the row
// extents are read on the device, so the calls can be captured in a CUDA
// graph and replayed with new lengths or offsets. Pure copies: no rounding.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "unmask/cuda/vector_io.hpp"

namespace unmask::cuda {

inline constexpr int row_copy_block = 128;

template <class T>
__global__ void scatter_rows_kernel(const T* src, std::int64_t seq_len, std::int64_t width,
                                    const std::int32_t* offsets, const std::int32_t* lengths,
                                    const std::int32_t* slots, std::int64_t capacity, T* dst) {
  const std::int64_t i = blockIdx.x, b = blockIdx.y;
  if (i >= lengths[b]) return;
  const T* from = src + (b * seq_len + i) * width;
  T* to = dst + (std::int64_t(slots[b]) * capacity + offsets[b] + i) * width;
  for (std::int64_t j = threadIdx.x; j < width; j += blockDim.x) to[j] = from[j];
}

template <class T>
__global__ void gather_rows_kernel(const T* src, const std::int32_t* rows, std::int64_t width, T* dst) {
  const std::int64_t i = blockIdx.x;
  const T* from = src + std::int64_t(rows[i]) * width;
  for (std::int64_t j = threadIdx.x; j < width; j += blockDim.x) dst[i * width + j] = from[j];
}

template <class T>
__global__ void zero_padding_rows_kernel(T* x, std::int64_t seq_len, std::int64_t width, const std::int32_t* lengths) {
  const std::int64_t i = blockIdx.x, b = blockIdx.y;
  if (i < lengths[b]) return;
  T* row = x + (b * seq_len + i) * width;
  for (std::int64_t j = threadIdx.x; j < width; j += blockDim.x) row[j] = from_float<T>(0.0f);
}

namespace detail {
inline bool row_grid_ok(std::int64_t rows, std::int64_t batch, std::int64_t width) {
  return rows >= 0 && rows <= INT32_MAX && batch >= 0 && batch <= 65535 && width >= 1;
}
}  // namespace detail

// Returns cudaErrorInvalidValue for null pointers or sizes outside the grid
// limits (seq_len < 2^31, batch <= 65535), else the launch error. The caller
// guarantees offsets[b] + lengths[b] <= capacity and slots[b] in range.
template <class T>
cudaError_t scatter_rows(const T* src, std::int64_t batch, std::int64_t seq_len, std::int64_t width,
                         const std::int32_t* offsets, const std::int32_t* lengths, const std::int32_t* slots,
                         std::int64_t capacity, T* dst, cudaStream_t stream) {
  if (!detail::row_grid_ok(seq_len, batch, width) || capacity < 1) return cudaErrorInvalidValue;
  if (batch == 0 || seq_len == 0) return cudaSuccess;
  if (!src || !offsets || !lengths || !slots || !dst) return cudaErrorInvalidValue;
  scatter_rows_kernel<<<dim3(unsigned(seq_len), unsigned(batch)), row_copy_block, 0, stream>>>(
      src, seq_len, width, offsets, lengths, slots, capacity, dst);
  return launch_result();
}

template <class T>
cudaError_t gather_rows(const T* src, const std::int32_t* rows, std::int64_t count, std::int64_t width, T* dst,
                        cudaStream_t stream) {
  if (!detail::row_grid_ok(count, 1, width)) return cudaErrorInvalidValue;
  if (count == 0) return cudaSuccess;
  if (!src || !rows || !dst) return cudaErrorInvalidValue;
  gather_rows_kernel<<<unsigned(count), row_copy_block, 0, stream>>>(src, rows, width, dst);
  return launch_result();
}

template <class T>
cudaError_t zero_padding_rows(T* x, std::int64_t batch, std::int64_t seq_len, std::int64_t width,
                              const std::int32_t* lengths, cudaStream_t stream) {
  if (!detail::row_grid_ok(seq_len, batch, width)) return cudaErrorInvalidValue;
  if (batch == 0 || seq_len == 0) return cudaSuccess;
  if (!x || !lengths) return cudaErrorInvalidValue;
  zero_padding_rows_kernel<<<dim3(unsigned(seq_len), unsigned(batch)), row_copy_block, 0, stream>>>(x, seq_len, width,
                                                                                                   lengths);
  return launch_result();
}

}  // namespace unmask::cuda
