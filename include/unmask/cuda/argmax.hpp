// unmask/cuda/argmax.hpp
//
// Greedy token choice for autoregressive decoding: tokens[r] = the argmax of
// logits row r (rows, vocab) over v != excluded_token, the first index on
// ties, exactly as unmask::choose_token's temperature-0 path (the excluded
// token is the mask id: an AR step must never emit it). One 256-thread block
// per row reads the row once with 16-byte loads (unmask/cuda/vector_io.hpp);
// each thread keeps the best (value, index) it has seen with a strict `>`,
// visiting its elements in increasing order so it holds its first maximum,
// and cub::BlockReduce merges the per-thread candidates, preferring the
// smaller index on equal values. NaN logits never win (every comparison with
// NaN is false, as on the CPU); a row with no finite-or-+inf candidate gets
// token -1. `token_candidate` is shared with the fused vocabulary pass
// (unmask/cuda/vocab_pass.hpp), whose temperature-0 token is this argmax.
#pragma once

#include <cub/block/block_reduce.cuh>

#include <cmath>
#include <cstdint>

#include "unmask/cuda/vector_io.hpp"

namespace unmask::cuda {

// The best token seen so far by a thread or a block: its key (the logit, or
// the Gumbel-perturbed scaled logit when sampling), its index, and the value
// its confidence is read from.
struct token_candidate {
  float key;
  std::int32_t index;
  float logit;

  UNMASK_HOST_DEVICE static token_candidate none() { return {-INFINITY, -1, -INFINITY}; }

  // For a thread visiting indices in increasing order: strict `>` keeps the first maximum.
  UNMASK_HOST_DEVICE void consider(float k, std::int32_t v, float l) {
    if (k > key) key = k, index = v, logit = l;
  }
  // Order-independent merge: the larger key, then the smaller index.
  UNMASK_HOST_DEVICE void merge(const token_candidate& o) {
    if (o.index < 0) return;
    if (index < 0 || o.key > key || (o.key == key && o.index < index)) *this = o;
  }
};

struct merge_candidates {
  UNMASK_HOST_DEVICE token_candidate operator()(const token_candidate& a, const token_candidate& b) const {
    token_candidate r = a;
    r.merge(b);
    return r;
  }
};

inline constexpr int argmax_block = 256;
inline constexpr int argmax_unroll = 4;

namespace detail {

// Thread `thread`'s candidate over one row.
template <int Block, class T>
UNMASK_HOST_DEVICE token_candidate argmax_thread(const T* row, std::int64_t vocab, std::int32_t excluded_token,
                                                 int thread) {
  token_candidate best = token_candidate::none();
  scan_range<Block, argmax_unroll, true>(row, vocab, 0, thread, [&](float l, std::int64_t v) {
    if (std::int32_t(v) != excluded_token) best.consider(l, std::int32_t(v), l);
  });
  return best;
}

}  // namespace detail

// logits (rows, vocab) -> tokens (rows); one block per row.
template <class T, int Block>
__global__ void __launch_bounds__(Block)
    argmax_kernel(const T* logits, std::int64_t vocab, std::int32_t excluded_token, std::int32_t* tokens) {
  static_assert(is_element_v<T>, "element type must be float, unmask::half or unmask::bfloat16");
  static_assert(Block % 32 == 0, "whole warps");
  const std::int64_t row = blockIdx.x;
  const token_candidate mine =
      detail::argmax_thread<Block>(logits + row * vocab, vocab, excluded_token, int(threadIdx.x));
  using reduce = cub::BlockReduce<token_candidate, Block>;
  __shared__ typename reduce::TempStorage storage;
  const token_candidate best = reduce(storage).Reduce(mine, merge_candidates{});
  if (threadIdx.x == 0) tokens[row] = best.index;
}

// tokens[r] = argmax_{v != excluded_token} logits[r, v]. Pass excluded_token
// = -1 to exclude nothing. Returns cudaErrorInvalidValue for null pointers,
// vocab outside [1, 2^31) or rows outside [0, 2^31).
template <class T>
cudaError_t argmax(const T* logits, std::int64_t rows, std::int64_t vocab, std::int32_t excluded_token,
                   std::int32_t* tokens, cudaStream_t stream) {
  if (rows < 0 || rows > INT32_MAX || vocab < 1 || vocab > INT32_MAX) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (logits == nullptr || tokens == nullptr) return cudaErrorInvalidValue;
  argmax_kernel<T, argmax_block><<<unsigned(rows), argmax_block, 0, stream>>>(logits, vocab, excluded_token, tokens);
  return launch_result();
}

}  // namespace unmask::cuda
