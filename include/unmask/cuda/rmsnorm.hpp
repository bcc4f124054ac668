// unmask/cuda/rmsnorm.hpp
//
// RMSNorm (Zhang and Sennrich 2019) as LLaDA's RMSLayerNorm and
// transformers' LlamaRMSNorm compute it, the GPU twin of unmask::cpu::rmsnorm:
//   out = (x * (1 / sqrt(mean(x^2) + eps))) * weight
// per row of x (rows, dim), in fp32 whatever the storage types (activations
// T, weight W, each float, half or bfloat16). add_rmsnorm fuses the residual
// add that precedes every norm of a transformer block: x += residual (summed
// in fp32, rounded to T and written back, so the residual stream holds what
// an unfused add would store), then the stored sum is normalised. One
// 256-thread block per row reads the row twice: the first pass accumulates
// the sum of squares in fp32 per thread, cub::BlockReduce sums the threads,
// the second pass (mostly L1/L2 hits) scales. Each thread re-reads exactly the
// elements it wrote in the first pass, so the fused write-back needs no
// barrier, and x is read with ordinary (coherent) loads. Rows move in 16-byte
// vectors when every pointer is 16-byte aligned and dim is a multiple of the
// vector width (16 / sizeof(T)), element by element otherwise. The CPU sums
// the squares in double; the two agree to ~1e-6 relative.
#pragma once

#include <cub/block/block_reduce.cuh>

#include <cmath>
#include <cstdint>

#include "unmask/cuda/vector_io.hpp"

namespace unmask::cuda {

inline constexpr int rmsnorm_block = 256;

// x (rows, dim) -> out; with Residual, x_sum = x + residual first (x_sum may be x).
template <class T, class W, int Block, int N, bool Residual>
__global__ void __launch_bounds__(Block) rmsnorm_kernel(const T* x, const T* residual, T* x_sum, const W* weight,
                                                        std::int64_t dim, float eps, T* out) {
  static_assert(is_element_v<T> && is_element_v<W>, "element types must be float, unmask::half or unmask::bfloat16");
  static_assert(Block % 32 == 0, "whole warps");
  static_assert(N == 1 || N == vector_width<T>, "one element or one 16-byte vector of T per access");
  const std::int64_t row = blockIdx.x;
  const std::int64_t vectors = dim / N;
  float squares = 0.0f;
  for (std::int64_t j = threadIdx.x; j < vectors; j += Block) {
    const std::int64_t at = row * dim + j * N;
    float v[N];
    load_floats<N>(x + at, v);
    if constexpr (Residual) {
      float r[N];
      load_floats<N>(residual + at, r);
#pragma unroll
      for (int e = 0; e < N; ++e) v[e] = to_float(from_float<T>(v[e] + r[e]));  // what the stream stores
      store_floats<N>(x_sum + at, v);
    }
#pragma unroll
    for (int e = 0; e < N; ++e) squares += v[e] * v[e];
  }
  using reduce = cub::BlockReduce<float, Block>;
  __shared__ typename reduce::TempStorage storage;
  __shared__ float scale_shared;
  const float total = reduce(storage).Sum(squares);
  if (threadIdx.x == 0) scale_shared = 1.0f / sqrtf(total / float(dim) + eps);
  __syncthreads();
  const float scale = scale_shared;
  const T* source = Residual ? x_sum : x;
  for (std::int64_t j = threadIdx.x; j < vectors; j += Block) {
    const std::int64_t at = row * dim + j * N;
    float v[N], w[N];
    load_floats<N>(source + at, v);
    load_floats<N>(weight + j * N, w);
#pragma unroll
    for (int e = 0; e < N; ++e) v[e] = (v[e] * scale) * w[e];
    store_floats<N>(out + at, v);
  }
}

namespace detail {

template <class T, class W, bool Residual>
cudaError_t launch_rmsnorm(const T* x, const T* residual, T* x_sum, const W* weight, std::int64_t rows,
                           std::int64_t dim, float eps, T* out, cudaStream_t stream) {
  constexpr int width = vector_width<T>;
  const bool vectorised = dim % width == 0 && is_aligned(x, 16) && is_aligned(weight, 16) && is_aligned(out, 16) &&
                          (!Residual || (is_aligned(residual, 16) && is_aligned(x_sum, 16)));
  if (vectorised)
    rmsnorm_kernel<T, W, rmsnorm_block, width, Residual>
        <<<unsigned(rows), rmsnorm_block, 0, stream>>>(x, residual, x_sum, weight, dim, eps, out);
  else
    rmsnorm_kernel<T, W, rmsnorm_block, 1, Residual>
        <<<unsigned(rows), rmsnorm_block, 0, stream>>>(x, residual, x_sum, weight, dim, eps, out);
  return launch_result();
}

inline bool rmsnorm_sizes_ok(std::int64_t rows, std::int64_t dim, float eps) {
  return rows >= 0 && rows <= INT32_MAX && dim >= 1 && eps >= 0.0f && std::isfinite(eps);
}

}  // namespace detail

// out (rows, dim) = rmsnorm(x) * weight (dim). out may be x. Returns
// cudaErrorInvalidValue for null pointers, rows outside [0, 2^31), dim < 1
// or a negative / non-finite eps, else the launch error.
template <class T, class W>
cudaError_t rmsnorm(const T* x, const W* weight, std::int64_t rows, std::int64_t dim, float eps, T* out,
                    cudaStream_t stream) {
  if (!detail::rmsnorm_sizes_ok(rows, dim, eps)) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (x == nullptr || weight == nullptr || out == nullptr) return cudaErrorInvalidValue;
  return detail::launch_rmsnorm<T, W, false>(x, nullptr, nullptr, weight, rows, dim, eps, out, stream);
}

// x += residual (rounded to T, written back), then out = rmsnorm(x) * weight.
// out may be residual but not x. Same errors as rmsnorm, and
// cudaErrorInvalidValue when out == x.
template <class T, class W>
cudaError_t add_rmsnorm(T* x, const T* residual, const W* weight, std::int64_t rows, std::int64_t dim, float eps,
                        T* out, cudaStream_t stream) {
  if (!detail::rmsnorm_sizes_ok(rows, dim, eps)) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (x == nullptr || residual == nullptr || weight == nullptr || out == nullptr || out == x)
    return cudaErrorInvalidValue;
  return detail::launch_rmsnorm<T, W, true>(x, residual, x, weight, rows, dim, eps, out, stream);
}

}  // namespace unmask::cuda
