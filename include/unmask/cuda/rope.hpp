// unmask/cuda/rope.hpp
//
// Rotary position embedding (Su et al. 2021, "RoFormer") in the half-rotation
// form LLaDA and Llama use, applied in place to x (rows, heads, head_dim) with
// row r at position positions[r]: pair i < head_dim / 2 is (x[i],
// x[i + head_dim / 2]) rotated by pos * theta^(-2i / head_dim) (see
// unmask/model/rotary.hpp). The GPU twin of unmask::cpu::rope, except that the
// cosine and sine are computed in the kernel from unmask::rope_angle (the same
// fp32 formula the CPU table is built from; the device's powf / sincosf are
// within 2 ulp of the host's) instead of read from a table. One block per row:
// threadIdx.x owns N consecutive pairs (N = 16 / sizeof(T) when x is 16-byte
// aligned and head_dim / 2 is a multiple of N, so both halves move as 16-byte
// vectors, else 1), computes their angles once and applies them to every head
// h = threadIdx.y, threadIdx.y + blockDim.y, ...; blockDim.y fills the block
// to about 256 threads. Arithmetic is fp32; T is float, half or bfloat16.
#pragma once

#include <cmath>
#include <cstdint>

#include "unmask/cuda/vector_io.hpp"
#include "unmask/model/rotary.hpp"

namespace unmask::cuda {

inline constexpr int rope_block = 256;  // threads per block, about

template <class T, int N>
__global__ void rope_kernel(T* x, std::int64_t heads, std::int64_t head_dim, const std::int32_t* positions,
                            float theta) {
  static_assert(is_element_v<T>, "element type must be float, unmask::half or unmask::bfloat16");
  static_assert(N == 1 || N == vector_width<T>, "one element or one 16-byte vector of T per access");
  const std::int64_t row = blockIdx.x;
  const std::int64_t half_dim = head_dim / 2;
  const std::int64_t pair = std::int64_t(threadIdx.x) * N;  // blockDim.x * N == half_dim
  const std::int64_t position = positions[row];
  float cos_a[N], sin_a[N];
#pragma unroll
  for (int e = 0; e < N; ++e) sincosf(rope_angle(position, pair + e, head_dim, theta), &sin_a[e], &cos_a[e]);
  for (std::int64_t h = threadIdx.y; h < heads; h += blockDim.y) {
    T* v = x + (row * heads + h) * head_dim;
    float a[N], b[N];
    load_floats<N>(v + pair, a);
    load_floats<N>(v + half_dim + pair, b);
#pragma unroll
    for (int e = 0; e < N; ++e) rope_rotate(a[e], b[e], cos_a[e], sin_a[e]);
    store_floats<N>(v + pair, a);
    store_floats<N>(v + half_dim + pair, b);
  }
}

// Rotates x (rows, heads, head_dim) in place. Returns cudaErrorInvalidValue
// for null pointers, rows outside [0, 2^31), heads < 1, an odd head_dim or
// one outside [2, 2048], or theta <= 0, else the launch error.
template <class T>
cudaError_t rope(T* x, std::int64_t rows, std::int64_t heads, std::int64_t head_dim, const std::int32_t* positions,
                 float theta, cudaStream_t stream) {
  if (rows < 0 || rows > INT32_MAX || heads < 1 || head_dim < 2 || head_dim > 2048 || head_dim % 2 != 0 ||
      !(theta > 0.0f) || !std::isfinite(theta))
    return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (x == nullptr || positions == nullptr) return cudaErrorInvalidValue;
  constexpr int width = vector_width<T>;
  const std::int64_t half_dim = head_dim / 2;
  const bool vectorised = half_dim % width == 0 && is_aligned(x, 16);
  const std::int64_t threads_x = vectorised ? half_dim / width : half_dim;  // <= 1024
  std::int64_t threads_y = rope_block / threads_x;
  if (threads_y < 1) threads_y = 1;
  if (threads_y > heads) threads_y = heads;
  const dim3 block(static_cast<unsigned>(threads_x), static_cast<unsigned>(threads_y));
  if (vectorised) rope_kernel<T, width><<<unsigned(rows), block, 0, stream>>>(x, heads, head_dim, positions, theta);
  else rope_kernel<T, 1><<<unsigned(rows), block, 0, stream>>>(x, heads, head_dim, positions, theta);
  return launch_result();
}

}  // namespace unmask::cuda
