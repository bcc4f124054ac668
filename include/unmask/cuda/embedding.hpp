// unmask/cuda/embedding.hpp
//
// Embedding gather, the GPU twin of unmask::cpu::embedding: out (rows, dim)
// = weight[tokens[r]] (vocab, dim), converted from the weight's type T to the
// activations' type Out (each float, half or bfloat16) through fp32, so a
// bf16 checkpoint feeds fp32 or bf16 activations. One 128-thread block per
// row copies it in 16-byte vectors of the weight (16 / sizeof(T) elements)
// when both pointers are 16-byte aligned and dim is a multiple of that width,
// element by element otherwise. The model validates token ids before the
// first kernel; an id outside [0, vocab) still never reads out of bounds: its
// row is filled with NaN, so the mistake shows in the logits.
#pragma once

#include <cmath>
#include <cstdint>

#include "unmask/cuda/vector_io.hpp"

namespace unmask::cuda {

inline constexpr int embedding_block = 128;

template <class T, class Out, int Block, int N>
__global__ void __launch_bounds__(Block) embedding_kernel(const std::int32_t* tokens, const T* weight,
                                                          std::int64_t vocab, std::int64_t dim, Out* out) {
  static_assert(is_element_v<T> && is_element_v<Out>, "element types must be float, unmask::half or unmask::bfloat16");
  static_assert(N == 1 || N == vector_width<T>, "one element or one 16-byte vector of the weight per access");
  const std::int64_t row = blockIdx.x;
  const std::int32_t token = tokens[row];
  const bool valid = token >= 0 && token < vocab;
  const T* w = weight + (valid ? std::int64_t(token) * dim : 0);
  Out* y = out + row * dim;
  for (std::int64_t j = threadIdx.x; j < dim / N; j += Block) {
    float v[N];
    if (valid) {
      load_floats<N>(w + j * N, v);
    } else {
#pragma unroll
      for (int e = 0; e < N; ++e) v[e] = NAN;
    }
    store_floats<N>(y + j * N, v);
  }
}

// out (rows, dim) = weight (vocab, dim) rows tokens (rows). Returns
// cudaErrorInvalidValue for null pointers, rows outside [0, 2^31), vocab < 1
// or dim < 1, else the launch error.
template <class T, class Out>
cudaError_t embedding(const std::int32_t* tokens, std::int64_t rows, const T* weight, std::int64_t vocab,
                      std::int64_t dim, Out* out, cudaStream_t stream) {
  if (rows < 0 || rows > INT32_MAX || vocab < 1 || dim < 1) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (tokens == nullptr || weight == nullptr || out == nullptr) return cudaErrorInvalidValue;
  constexpr int width = vector_width<T>;
  const bool vectorised = dim % width == 0 && is_aligned(weight, 16) && is_aligned(out, 16);
  if (vectorised)
    embedding_kernel<T, Out, embedding_block, width>
        <<<unsigned(rows), embedding_block, 0, stream>>>(tokens, weight, vocab, dim, out);
  else
    embedding_kernel<T, Out, embedding_block, 1>
        <<<unsigned(rows), embedding_block, 0, stream>>>(tokens, weight, vocab, dim, out);
  return launch_result();
}

}  // namespace unmask::cuda
