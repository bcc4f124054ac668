// unmask/policy/sampling_settings.hpp
//
// The built-in token sampler's run-time choice (the algorithm is in
// unmask/policy/sampling.hpp): the temperature T (0: greedy; T > 0: the
// Gumbel-max trick, which samples softmax(l / T)), Dream's top-k and top-p
// filters, and which distribution the confidence is read from (the raw
// logits, as LLaDA, or the filtered tempered one, as Dream).
#pragma once

#include <cmath>
#include <cstdint>

#include "unmask/core/error.hpp"

namespace unmask {

struct sampling_settings {
  float temperature = 0.0f;
  std::int32_t top_k = 0;   // 0: off
  float top_p = 1.0f;       // 1: off
  bool confidence_on_sampling_distribution = false;  // Dream: true; LLaDA: false

  void validate() const {
    if (!(temperature >= 0.0f) || !std::isfinite(temperature))
      throw argument_error(concat("temperature must be >= 0, got ", temperature));
    if (top_k < 0) throw argument_error(concat("top_k must be >= 0, got ", top_k));
    if (!(top_p > 0.0f && top_p <= 1.0f)) throw argument_error(concat("top_p must be in (0, 1], got ", top_p));
  }
  bool filters() const { return top_k > 0 || top_p < 1.0f; }
  // Greedy on the raw distribution: what a sampler of one's own takes the place of.
  bool is_default() const {
    return temperature == 0.0f && top_k == 0 && top_p == 1.0f && !confidence_on_sampling_distribution;
  }
};

}  // namespace unmask
