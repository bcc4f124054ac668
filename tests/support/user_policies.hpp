// tests/support/user_policies.hpp
//
// Policy types of the kind a user writes (unmask/policy/decoding_policy.hpp),
// shared by the CPU and the CUDA tests: a rule with its own order key, and
// two confidence metrics (unmask/policy/token_rules.hpp): the log of the
// built-in probability (the same order: top-k decodes the same tokens) and a
// site-keyed random score (an order of its own, reproducible everywhere);
// and two token samplers: Gumbel-max at a temperature, written as the
// built-in sampler computes it (so it draws the built-in's tokens), and a
// deterministic preference for even token ids.
#pragma once

#include <cstdint>

#include "unmask/core/dtype.hpp"
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

// log p(token) = l - log-sum-exp.
struct log_probability {
  UNMASK_HOST_DEVICE float operator()(const vocab_stats& stats, float token_logit, const draw_site&,
                                      const counter_rng&) const {
    return token_logit - stats.log_sum_exp();
  }
};

// p(token) times a uniform number keyed by the draw site.
struct jittered_probability {
  UNMASK_HOST_DEVICE float operator()(const vocab_stats& stats, float token_logit, const draw_site& site,
                                      const counter_rng& rng) const {
    return stats.probability(token_logit) *
           rng.uniform(random_purpose::confidence, site.sequence, site.step, site.position, 0);
  }
};

// key = l / T + Gumbel noise: samples softmax(l / T), as sampling_settings{T}.
struct tempered_gumbel {
  float temperature = 1.0f;
  UNMASK_HOST_DEVICE float key(float logit, std::int32_t v, const draw_site& site, const counter_rng& rng) const {
    return add_rn(mul_rn(logit, 1.0f / temperature),
                  rng.gumbel(random_purpose::token, site.sequence, site.step, site.position, std::uint32_t(v)));
  }
};

// Even token ids get `bonus` nats: a greedy choice that favours them.
struct even_bonus {
  float bonus = 100.0f;
  UNMASK_HOST_DEVICE float key(float logit, std::int32_t v, const draw_site&, const counter_rng&) const {
    return v % 2 == 0 ? logit + bonus : logit;
  }
};

}  // namespace unmask::test
