// margin_gap_rule.hpp: a selection rule of one's own.
//
// At every step, commit every candidate whose confidence is within `gap` of
// the most confident one (always at least that one): a block where the model
// is equally sure of several positions commits them together, one where it
// has a clear favourite commits only that. The rule ignores the schedule.
// It meets the selection-rule interface of unmask/policy/decoding_policy.hpp;
// its members are host/device, so the CUDA selection kernel runs it too.
#pragma once

#include <cstdint>

#include "unmask/core/error.hpp"
#include "unmask/policy/decoding_policy.hpp"

namespace example {

struct margin_gap_rule {
  float gap = 0.05f;

  // `sorted`: the m candidates' confidences, highest first.
  UNMASK_HOST_DEVICE std::int32_t commit_count(const float* sorted, std::int32_t m, std::int32_t /*scheduled*/,
                                               unmask::confidence_metric /*metric*/) const {
    if (m <= 0) return 0;
    std::int32_t k = 1;
    while (k < m && sorted[k] >= sorted[0] - gap) ++k;
    return k;
  }
  UNMASK_HOST_DEVICE bool uses_schedule() const { return false; }
  void validate() const {
    if (!(gap >= 0.0f)) throw unmask::argument_error(unmask::concat("margin_gap_rule: gap must be >= 0, got ", gap));
  }
};

}  // namespace example
