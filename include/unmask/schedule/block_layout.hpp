// unmask/schedule/block_layout.hpp
//
// Semi-autoregressive blocks (LLaDA): the gen_length generated positions are
// split into gen_length / block_length blocks decoded left to right, each with
// steps / num_blocks steps; block b of a sequence with prompt length P covers
// positions [P + b block_length, P + (b + 1) block_length). One block of the
// whole length is plain (non-blocked) diffusion decoding.
#pragma once

#include <cstdint>

#include "unmask/core/error.hpp"

namespace unmask {

struct block_layout {
  std::int32_t gen_length = 0;
  std::int32_t block_length = 0;
  std::int32_t steps = 0;  // total, over all blocks

  std::int32_t blocks() const { return gen_length / block_length; }
  std::int32_t steps_per_block() const { return steps / blocks(); }

  // Throws on the combinations the reference rejects; `steps_required` is
  // false for rules that decide their own step count (threshold, factor, EB).
  void validate(bool steps_required = true) const {
    if (gen_length <= 0) throw argument_error(concat("gen_length must be positive, got ", gen_length));
    if (block_length <= 0) throw argument_error(concat("block_length must be positive, got ", block_length));
    if (gen_length % block_length != 0)
      throw argument_error(concat("gen_length ", gen_length, " is not a multiple of block_length ", block_length));
    if (!steps_required) return;
    if (steps <= 0) throw argument_error(concat("steps must be positive, got ", steps));
    if (steps % blocks() != 0)
      throw argument_error(concat("steps ", steps, " is not a multiple of the number of blocks ", blocks(),
                                  " (gen_length ", gen_length, " / block_length ", block_length, ")"));
  }
};

}  // namespace unmask
