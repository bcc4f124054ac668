// unmask/cuda/resident_step.hpp
//
// The small kernels of a resident decode step on the GPU (the books kept
// around the vocabulary pass and the commit kernel; see
// unmask/decode/resident_state.hpp, whose host/device functions they run):
//   resident_sites       one block per sequence, threads over its block rows;
//   resident_candidates  one block per sequence: cub::BlockScan turns the
//                        "row is masked" flags into each candidate's rank,
//                        so the masked rows are compacted in position order
//                        in one pass (tiles of the block's threads when the
//                        block is longer), then thread 0 writes the record;
//   resident_advance     one thread per sequence.
// All read their sizes from arguments that stay fixed for a block and their
// state from device memory, so a whole step can be captured as a CUDA graph.
#pragma once

#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "unmask/cuda/vector_io.hpp"
#include "unmask/decode/resident_state.hpp"

namespace unmask::cuda {

inline constexpr int resident_block = 128;

__global__ void resident_sites_kernel(const resident_sequence* seqs, std::int32_t block_length, draw_site* sites) {
  const std::int64_t s = blockIdx.x;
  const resident_sequence seq = seqs[s];
  for (std::int32_t r = std::int32_t(threadIdx.x); r < block_length; r += blockDim.x)
    sites[s * block_length + r] = unmask::resident_site(seq, r);
}

__global__ void __launch_bounds__(resident_block)
    resident_candidates_kernel(const resident_sequence* seqs, std::int32_t block_length, std::int32_t steps,
                               const std::int32_t* canvas, std::int32_t mask, const std::int32_t* proposed,
                               const float* confidence, std::int32_t* positions, std::int32_t* tokens,
                               float* confidences, selection_sequence* selection) {
  using scan = cub::BlockScan<std::int32_t, resident_block>;
  __shared__ typename scan::TempStorage storage;
  const std::int32_t s = std::int32_t(blockIdx.x);
  const resident_sequence seq = seqs[s];
  const std::int64_t first = std::int64_t(s) * block_length;
  __shared__ int invalid;  // a masked row proposed -1 (see resident_state.hpp)
  if (threadIdx.x == 0) invalid = 0;
  __syncthreads();
  std::int32_t found = 0;  // candidates in earlier tiles (the same in every thread)
  for (std::int32_t base = 0; base < block_length; base += resident_block) {
    const std::int32_t r = base + std::int32_t(threadIdx.x);
    const std::int32_t masked =
        r < block_length && canvas[seq.canvas_offset + seq.block_begin + r] == mask ? 1 : 0;
    std::int32_t rank = 0, tile_total = 0;
    scan(storage).ExclusiveSum(masked, rank, tile_total);
    if (masked) {
      const std::int64_t c = first + found + rank;
      positions[c] = seq.block_begin + r;
      tokens[c] = proposed[first + r];
      confidences[c] = confidence[first + r];
      if (proposed[first + r] < 0) atomicOr(&invalid, 1);
    }
    found += tile_total;
    __syncthreads();  // the scan's storage is reused by the next tile
  }
  if (threadIdx.x == 0) selection[s] = resident_selection(seq, s, block_length, invalid ? -1 : found, steps);
}

__global__ void resident_advance_kernel(resident_sequence* seqs, const selection_sequence* selection,
                                        const std::int32_t* committed, std::int32_t n, std::int32_t* remaining) {
  const std::int32_t s = std::int32_t(blockIdx.x * blockDim.x + threadIdx.x);
  if (s < n) remaining[s] = unmask::resident_advance(seqs[s], selection[s].candidate_count, committed[s]);
}

// Launchers: cudaErrorInvalidValue for null pointers or sizes outside
// n in [0, 2^31), block_length >= 1; cudaSuccess without launching when n is 0.
inline cudaError_t resident_sites(const resident_sequence* seqs, std::int64_t n, std::int32_t block_length,
                                  draw_site* sites, cudaStream_t stream) {
  if (n < 0 || n > INT32_MAX || block_length < 1) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (!seqs || !sites) return cudaErrorInvalidValue;
  resident_sites_kernel<<<unsigned(n), resident_block, 0, stream>>>(seqs, block_length, sites);
  return launch_result();
}

inline cudaError_t resident_candidates(const resident_sequence* seqs, std::int64_t n, std::int32_t block_length,
                                       std::int32_t steps, const std::int32_t* canvas, std::int32_t mask,
                                       const std::int32_t* proposed, const float* confidence,
                                       std::int32_t* positions, std::int32_t* tokens, float* confidences,
                                       selection_sequence* selection, cudaStream_t stream) {
  if (n < 0 || n > INT32_MAX || block_length < 1 || std::int64_t(block_length) * n > INT32_MAX)
    return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (!seqs || !canvas || !proposed || !confidence || !positions || !tokens || !confidences || !selection)
    return cudaErrorInvalidValue;
  resident_candidates_kernel<<<unsigned(n), resident_block, 0, stream>>>(
      seqs, block_length, steps, canvas, mask, proposed, confidence, positions, tokens, confidences, selection);
  return launch_result();
}

inline cudaError_t resident_advance(resident_sequence* seqs, const selection_sequence* selection,
                                    const std::int32_t* committed, std::int64_t n, std::int32_t* remaining,
                                    cudaStream_t stream) {
  if (n < 0 || n > INT32_MAX) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (!seqs || !selection || !committed || !remaining) return cudaErrorInvalidValue;
  const unsigned blocks = unsigned((n + resident_block - 1) / resident_block);
  resident_advance_kernel<<<blocks, resident_block, 0, stream>>>(seqs, selection, committed, std::int32_t(n), remaining);
  return launch_result();
}

}  // namespace unmask::cuda
