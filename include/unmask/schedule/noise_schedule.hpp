// unmask/schedule/noise_schedule.hpp
//
// Noise schedules of continuous-time masked diffusion (MDLM, Sahoo et al.
// 2024, kuleshov-group/mdlm noise_schedule.py) as alpha(t), the probability
// that a token is still unmasked at time t in [0, 1]:
//   log_linear  alpha = 1 - (1 - eps) t          (sigma = -log1p(-(1 - eps) t))
//   cosine      alpha = eps + (1 - eps) cos(pi t / 2)
//   linear      alpha = exp(-(sigma_min + t (sigma_max - sigma_min)))
// Ancestral sampling walks the grid t_i = linspace(1, t_min, T + 1) (MDLM:
// t_min = 1e-5) and, from t to s < t, unmasks each masked position
// independently with probability (alpha_s - alpha_t) / (1 - alpha_t): for the
// log-linear schedule (t - s) / t, MDLM's q[mask] = s normalisation, and
// Dream's `origin` rule 1 - s / t on its own grid (t_min = eps = 1e-3).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "unmask/core/config.hpp"
#include "unmask/core/error.hpp"

namespace unmask {

enum class noise_kind : std::uint8_t { log_linear, cosine, linear };

struct noise_schedule {
  noise_kind kind = noise_kind::log_linear;
  float eps = 1e-3f;         // log_linear, cosine
  float sigma_min = 0.0f;    // linear
  float sigma_max = 10.0f;   // linear
  float t_min = 1e-5f;       // last point of the time grid

  UNMASK_HOST_DEVICE float alpha(float t) const {
    switch (kind) {
      case noise_kind::cosine: return eps + (1.0f - eps) * cosf(1.5707963267948966f * t);
      case noise_kind::linear: return expf(-(sigma_min + t * (sigma_max - sigma_min)));
      default: return 1.0f - (1.0f - eps) * t;
    }
  }

  // Time of grid point i of steps + 1 points from 1 down to t_min.
  UNMASK_HOST_DEVICE float time(std::int32_t i, std::int32_t steps) const {
    return 1.0f + (t_min - 1.0f) * float(i) / float(steps);
  }

  // Probability that a masked position is revealed at step i (t_i -> t_{i+1}).
  UNMASK_HOST_DEVICE float reveal_probability(std::int32_t i, std::int32_t steps) const {
    const float at = alpha(time(i, steps)), as = alpha(time(i + 1, steps));
    const float p = (as - at) / (1.0f - at);
    return p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
  }
};

inline noise_kind parse_noise_kind(const std::string& name) {
  if (name == "log_linear" || name == "loglinear") return noise_kind::log_linear;
  if (name == "cosine") return noise_kind::cosine;
  if (name == "linear") return noise_kind::linear;
  throw argument_error(concat("unknown noise schedule '", name, "' (log_linear, cosine, linear)"));
}

}  // namespace unmask
