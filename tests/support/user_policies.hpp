// tests/support/user_policies.hpp
//
// Policy types of the kind a user writes (unmask/policy/decoding_policy.hpp),
// shared by the CPU and the CUDA tests: a rule with its own order key.
#pragma once

#include <cstdint>

#include "unmask/policy/decoding_policy.hpp"

namespace unmask::test {

// Top-k over the reversed order: the least confident candidates first.
struct least_confident_first {
  UNMASK_HOST_DEVICE float order_key(float confidence, const draw_site&, const counter_rng&) const {
    return -confidence;
  }
  UNMASK_HOST_DEVICE std::int32_t commit_count(const float*, std::int32_t m, std::int32_t scheduled,
                                               confidence_metric) const {
    return scheduled < m ? scheduled : m;
  }
  UNMASK_HOST_DEVICE bool uses_schedule() const { return true; }
};

}  // namespace unmask::test
