// halving_schedule.hpp: a schedule of one's own.
//
// Each step commits half of the masks the block still holds, rounded up
// (eight masks: 4, 2, 1, 1), so the first steps, which see the least
// context, commit the most and the last ones refine one token at a time;
// the block's last scheduled step commits whatever is left. Integer
// arithmetic only, so the CPU and the GPU agree exactly. It meets the
// schedule interface of unmask/policy/decoding_policy.hpp and works with any
// rule that follows the schedule (top-k, stochastic).
#pragma once

#include <cstdint>

#include "unmask/core/config.hpp"

namespace example {

struct halving_schedule {
  UNMASK_HOST_DEVICE std::int32_t count(std::int32_t step, std::int32_t steps, std::int32_t /*initial_masks*/,
                                        std::int32_t masks) const {
    if (steps <= 0 || masks <= 0) return 0;
    if (step >= steps - 1) return masks;
    return (masks + 1) / 2;
  }
};

}  // namespace example
