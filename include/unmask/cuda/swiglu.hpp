// unmask/cuda/swiglu.hpp
//
// SwiGLU (Shazeer 2020, "GLU variants improve transformer") as LLaDA's llama
// block computes it, the GPU twin of unmask::cpu::swiglu:
//   out = silu(gate) * up,  silu(g) = g / (1 + e^-g)
// elementwise over n values of T, in fp32 with the same unmask::silu as the
// CPU. A grid-stride loop of 256-thread blocks moves 16-byte vectors when the
// three pointers are 16-byte aligned (the last n % (16 / sizeof(T)) elements
// then go one per thread of block 0), element by element otherwise. out may
// alias gate or up: every element is read and written by the same thread.
#pragma once

#include <cmath>
#include <cstdint>

#include "unmask/cpu/swiglu.hpp"
#include "unmask/cuda/vector_io.hpp"

namespace unmask::cuda {

inline constexpr int swiglu_block = 256;
inline constexpr std::int64_t swiglu_max_blocks = 65535;

template <class T, int Block, int N>
__global__ void __launch_bounds__(Block) swiglu_kernel(const T* gate, const T* up, std::int64_t n, T* out) {
  static_assert(is_element_v<T>, "element type must be float, unmask::half or unmask::bfloat16");
  static_assert(N == 1 || N == vector_width<T>, "one element or one 16-byte vector of T per access");
  const std::int64_t vectors = n / N;
  const std::int64_t stride = std::int64_t(gridDim.x) * Block;
  for (std::int64_t j = std::int64_t(blockIdx.x) * Block + threadIdx.x; j < vectors; j += stride) {
    float g[N], u[N];
    load_floats<N>(gate + j * N, g);
    load_floats<N>(up + j * N, u);
#pragma unroll
    for (int e = 0; e < N; ++e) g[e] = silu(g[e]) * u[e];
    store_floats<N>(out + j * N, g);
  }
  const std::int64_t done = vectors * N;
  if (blockIdx.x == 0 && threadIdx.x < n - done) {
    const std::int64_t i = done + threadIdx.x;
    float g[1], u[1];
    load_floats<1>(gate + i, g);
    load_floats<1>(up + i, u);
    g[0] = silu(g[0]) * u[0];
    store_floats<1>(out + i, g);
  }
}

// out (n) = silu(gate) * up. Returns cudaErrorInvalidValue for null pointers
// or n < 0, else the launch error.
template <class T>
cudaError_t swiglu(const T* gate, const T* up, std::int64_t n, T* out, cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (gate == nullptr || up == nullptr || out == nullptr) return cudaErrorInvalidValue;
  constexpr int width = vector_width<T>;
  const bool vectorised = is_aligned(gate, 16) && is_aligned(up, 16) && is_aligned(out, 16);
  const std::int64_t work = vectorised ? n / width : n;
  std::int64_t blocks = (work + swiglu_block - 1) / swiglu_block;
  if (blocks < 1) blocks = 1;  // the tail alone still needs block 0
  if (blocks > swiglu_max_blocks) blocks = swiglu_max_blocks;
  if (vectorised)
    swiglu_kernel<T, swiglu_block, width><<<unsigned(blocks), swiglu_block, 0, stream>>>(gate, up, n, out);
  else
    swiglu_kernel<T, swiglu_block, 1><<<unsigned(blocks), swiglu_block, 0, stream>>>(gate, up, n, out);
  return launch_result();
}

}  // namespace unmask::cuda
