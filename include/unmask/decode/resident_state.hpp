// unmask/decode/resident_state.hpp
//
// The per-sequence state of resident decoding (unmask/decode/
// resident_decoder.hpp), the confidence loop whose steps run entirely in the
// backend's memory, and the three small operations around the token choice
// and the commit that keep it there. For a batch of n sequences, each
// feeding its whole canvas (row s at canvas_offset = s * width) and asking
// for the logits of its block's L rows:
//   sites       draw site of block row r of sequence s: (id, rng_step, block_begin + r);
//   candidates  the masked rows of each block, in position order, with the
//               proposed token and confidence, compacted to [s * L, s * L + m)
//               and described by a selection_sequence for the commit kernel;
//   advance     after the commit: a sequence that had candidates counts the
//               step (rng_step, block_step) and its commits; remaining[s] is
//               the masks its block still holds. A masked row whose proposal
//               is -1 (no finite logit) makes the count -1: the commit step
//               leaves such a sequence alone and advance flags it `failed`.
// The functions below do one sequence and are host/device, so the CPU
// backend loops over them and the CUDA kernels (unmask/cuda/resident_step.hpp)
// run them one block or thread per sequence: both backends keep the same
// books, which is what makes resident decoding equal to diffusion_decoder.
#pragma once

#include <cstdint>

#include "unmask/core/config.hpp"
#include "unmask/policy/commit.hpp"
#include "unmask/policy/sampling.hpp"

namespace unmask {

struct resident_sequence {
  std::int64_t canvas_offset = 0;  // where its canvas starts in the (n, width) canvas
  std::int32_t block_begin = 0;    // canvas position of its block's first row
  std::uint32_t id = 0;            // decode_request::id
  std::uint32_t rng_step = 0;      // its own step counter (across blocks)
  std::int32_t block_step = 0;     // steps taken in this block
  std::int32_t initial_masks = 0;  // masks in the block when it started
  std::int64_t committed = 0;      // tokens committed in this block
  std::int32_t failed = 0;         // 1: a masked row had no token to propose (no finite logit)
};

UNMASK_HOST_DEVICE draw_site resident_site(const resident_sequence& s, std::int32_t r) {
  return {s.id, s.rng_step, std::uint32_t(s.block_begin + r)};
}

// The record of sequence `index` for the commit step, its candidates written
// from `first = index * block_length` on.
UNMASK_HOST_DEVICE selection_sequence resident_selection(const resident_sequence& s, std::int32_t index,
                                                         std::int32_t block_length, std::int32_t count,
                                                         std::int32_t steps) {
  return {index * block_length, count, s.canvas_offset, s.id, s.rng_step, s.block_step, steps, s.initial_masks};
}

// After the commit of `take` tokens from `m` candidates: the step counts when
// the sequence took part in it; returns the masks left in its block. A
// negative m marks a block with an invalid proposal: nothing was committed
// and the sequence is flagged (the host raises the error).
UNMASK_HOST_DEVICE std::int32_t resident_advance(resident_sequence& s, std::int32_t m, std::int32_t take) {
  if (m < 0) s.failed = 1;
  if (m <= 0) return 0;
  s.rng_step += 1;
  s.block_step += 1;
  s.committed += take;
  return m - take;
}

namespace detail {

// The host loops the CPU backend runs (one sequence after another).
inline void resident_sites_host(const resident_sequence* seqs, std::int64_t n, std::int32_t block_length,
                                draw_site* sites) {
  for (std::int64_t s = 0; s < n; ++s)
    for (std::int32_t r = 0; r < block_length; ++r) sites[s * block_length + r] = resident_site(seqs[s], r);
}

inline void resident_candidates_host(const resident_sequence* seqs, std::int64_t n, std::int32_t block_length,
                                     std::int32_t steps, const std::int32_t* canvas, std::int32_t mask,
                                     const std::int32_t* proposed, const float* confidence, std::int32_t* positions,
                                     std::int32_t* tokens, float* confidences, selection_sequence* selection) {
  for (std::int64_t s = 0; s < n; ++s) {
    const resident_sequence& seq = seqs[s];
    const std::int64_t first = s * block_length;
    std::int32_t m = 0;
    bool invalid = false;
    for (std::int32_t r = 0; r < block_length; ++r) {
      if (canvas[seq.canvas_offset + seq.block_begin + r] != mask) continue;
      positions[first + m] = seq.block_begin + r;
      tokens[first + m] = proposed[first + r];
      confidences[first + m] = confidence[first + r];
      invalid |= proposed[first + r] < 0;
      ++m;
    }
    // A proposal of -1 (a row without a finite logit): commit nothing (a
    // negative count), and let advance flag the sequence.
    selection[s] = resident_selection(seq, std::int32_t(s), block_length, invalid ? -1 : m, steps);
  }
}

inline void resident_advance_host(resident_sequence* seqs, const selection_sequence* selection,
                                  const std::int32_t* committed, std::int64_t n, std::int32_t* remaining) {
  for (std::int64_t s = 0; s < n; ++s)
    remaining[s] = resident_advance(seqs[s], selection[s].candidate_count, committed[s]);
}

}  // namespace detail
}  // namespace unmask
