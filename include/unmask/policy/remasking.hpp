// unmask/policy/remasking.hpp
//
// ReMDM (Wang, Schiff, Sahoo and Kuleshov 2025, arXiv 2503.00307,
// kuleshov-group/remdm): ancestral sampling that may also remask decoded
// tokens, so early mistakes can be revised. From time t to s < t, with alpha
// the probability that a token is unmasked and sigma the remasking rate
// (docs/policies.md, "ReMDM remasking"):
//   decoded token: remasked with probability sigma
//   masked token:  revealed with probability (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)
// with sigma_max = min(1, (1 - alpha_s) / alpha_t) and the strategies
//   cap      sigma = min(eta, sigma_max)
//   rescale  sigma = eta sigma_max
//   conf     sigma_i = softmax_j(-psi_j)_i sigma_max over the decoded tokens,
//            psi = the current probability of the token; masked tokens use
//            the mean of the sigma_i, which keeps the expected number of masks
//            on the schedule (a choice of unmask's: the paper leaves it open)
//   loop     alpha rises linearly from 0 to alpha_on over t in [t_on, 1], is
//            held at alpha_on with sigma = eta for t in [t_off, t_on], then
//            rises to 1 (ReMDM-loop; defaults eta 0.02, t_on 0.55, t_off 0.05,
//            alpha_on 0.9 as in the repository's scripts)
// sigma = 0 everywhere is plain MDLM ancestral sampling.
#pragma once

#include <cstdint>
#include <string>

#include "unmask/core/config.hpp"
#include "unmask/core/error.hpp"

namespace unmask {

enum class remask_strategy : std::uint8_t { none, cap, rescale, conf, loop };

struct remdm_settings {
  remask_strategy strategy = remask_strategy::none;
  float eta = 0.04f;
  float t_on = 0.55f, t_off = 0.05f, alpha_on = 0.9f;  // loop

  void validate() const {
    if (strategy == remask_strategy::none) return;
    if (!(eta >= 0.0f && eta <= 1.0f)) throw argument_error(concat("ReMDM eta must be in [0, 1], got ", eta));
    if (strategy == remask_strategy::loop && !(t_off >= 0.0f && t_off < t_on && t_on < 1.0f && alpha_on > 0.0f && alpha_on < 1.0f))
      throw argument_error(concat("ReMDM loop needs 0 <= t_off < t_on < 1 and alpha_on in (0, 1), got t_off ", t_off,
                                  ", t_on ", t_on, ", alpha_on ", alpha_on));
  }

  // The loop strategy's own alpha(t); other strategies use the noise schedule.
  UNMASK_HOST_DEVICE float loop_alpha(float t) const {
    if (t >= t_on) return alpha_on * (1.0f - t) / (1.0f - t_on);
    if (t >= t_off) return alpha_on;
    return alpha_on + (1.0f - alpha_on) * (t_off - t) / t_off;
  }

  // The scalar sigma of a step (cap, rescale, loop), or sigma_max for conf.
  UNMASK_HOST_DEVICE float sigma(float t, float alpha_t, float alpha_s) const {
    if (strategy == remask_strategy::none || !(alpha_t > 0.0f)) return 0.0f;
    float sigma_max = (1.0f - alpha_s) / alpha_t;
    sigma_max = sigma_max > 1.0f ? 1.0f : sigma_max;
    switch (strategy) {
      case remask_strategy::cap: return eta < sigma_max ? eta : sigma_max;
      case remask_strategy::rescale: return eta * sigma_max;
      case remask_strategy::loop: return (t <= t_on && t >= t_off) ? eta : 0.0f;
      default: return sigma_max;  // conf: scaled per token by the caller
    }
  }
};

// Reveal probability of a masked token under remasking rate sigma.
UNMASK_HOST_DEVICE float remdm_reveal_probability(float alpha_t, float alpha_s, float sigma) {
  if (!(alpha_t < 1.0f)) return 1.0f;
  const float p = (alpha_s - (1.0f - sigma) * alpha_t) / (1.0f - alpha_t);
  return p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
}

inline remask_strategy parse_remask_strategy(const std::string& name) {
  if (name == "none" || name.empty()) return remask_strategy::none;
  if (name == "cap") return remask_strategy::cap;
  if (name == "rescale") return remask_strategy::rescale;
  if (name == "conf") return remask_strategy::conf;
  if (name == "loop") return remask_strategy::loop;
  throw argument_error(concat("unknown remasking strategy '", name, "' (none, cap, rescale, conf, loop)"));
}

}  // namespace unmask
