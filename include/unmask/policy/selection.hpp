// unmask/policy/selection.hpp
//
// Selection rules: how many of a sequence's candidates (the masked positions
// of the current block) to commit this step. Each rule sees the candidates'
// scores sorted in descending order, s_0 >= s_1 >= ... >= s_{M-1}, and always
// commits a prefix of that order (docs/policies.md, "Selection rules"):
//   top_k            the schedule's count k (LLaDA, Dream)
//   threshold        1 + #{i >= 1 : s_i >= tau}: the best always, then every
//                    other score >= tau (Fast-dLLM, NVlabs/Fast-dLLM generate.py)
//   threshold_dinfer #{i : s_i >= min(s_0 - 1e-5, tau)} (dInfer)
//   factor           k = first i with s_i < 1 - f / (i + 2) (i >= 1; M if none,
//                    as the loop leaves it at M - 1), then k + 1 when k is 0
//                    or M - 1, as Fast-dLLM's get_transfer_index_dynamic reads
//   entropy_bounded  the largest prefix with sum e_i - max e_i <= gamma, at
//                    least one (EB-sampler, arXiv 2505.24857), where the error
//                    e_i is the entropy -s_i for the entropy metric, else 1 - s_i
//   stochastic       Dream's alg_temp: the schedule's k drawn without
//                    replacement from softmax(s / alg_temp), done by adding
//                    Gumbel noise to s / alg_temp before sorting (Plackett-Luce)
// selection_rule holds the choice among these at run time (the program's
// flags); it is also the reference for the interface a user's own rule meets
// (unmask/policy/decoding_policy.hpp, docs/extending.md): commit_count,
// uses_schedule and, optionally, order_key and validate. The functions are
// host/device so the CUDA selection kernel reuses them.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "unmask/core/config.hpp"
#include "unmask/core/error.hpp"
#include "unmask/policy/confidence.hpp"
#include "unmask/random/philox.hpp"

namespace unmask {

enum class selection_kind : std::uint8_t { top_k, threshold, threshold_dinfer, factor, entropy_bounded, stochastic };

// The stochastic order key, confidence / alg_temp + gumbel, each operation
// rounded once on the device as on the host.
UNMASK_HOST_DEVICE float stochastic_order_key(float confidence, float alg_temp, float gumbel) {
#if UNMASK_ON_DEVICE
  return __fadd_rn(__fdiv_rn(confidence, alg_temp), gumbel);
#else
  return confidence / alg_temp + gumbel;
#endif
}

struct selection_rule {
  selection_kind kind = selection_kind::top_k;
  float tau = 0.9f;           // threshold, threshold_dinfer: the confidence threshold
  float factor_scale = 1.0f;  // factor: f
  float gamma = 0.01f;        // entropy_bounded: the error bound
  float alg_temp = 1.0f;      // stochastic: Dream's alg_temp

  UNMASK_HOST_DEVICE static selection_rule top_k() { return {}; }
  UNMASK_HOST_DEVICE static selection_rule threshold(float tau) { return {selection_kind::threshold, tau, 1, 0, 1}; }
  UNMASK_HOST_DEVICE static selection_rule dinfer_threshold(float tau) { return {selection_kind::threshold_dinfer, tau, 1, 0, 1}; }
  UNMASK_HOST_DEVICE static selection_rule factor(float f) { return {selection_kind::factor, 0.9f, f, 0, 1}; }
  UNMASK_HOST_DEVICE static selection_rule entropy_bounded(float gamma) { return {selection_kind::entropy_bounded, 0.9f, 1, gamma, 1}; }
  UNMASK_HOST_DEVICE static selection_rule stochastic(float alg_temp) { return {selection_kind::stochastic, 0.9f, 1, 0, alg_temp}; }
  // The names of the published methods.
  UNMASK_HOST_DEVICE static selection_rule fast_dllm_threshold(float tau) { return threshold(tau); }
  UNMASK_HOST_DEVICE static selection_rule fast_dllm_factor(float f) { return factor(f); }
  UNMASK_HOST_DEVICE static selection_rule dream_alg_temp(float t) { return stochastic(t); }

  // Whether the rule takes its count from the schedule.
  UNMASK_HOST_DEVICE bool uses_schedule() const {
    return kind == selection_kind::top_k || kind == selection_kind::stochastic;
  }

  void validate() const {
    // Any finite threshold (a negative one commits every candidate; entropy confidences are negative).
    if ((kind == selection_kind::threshold || kind == selection_kind::threshold_dinfer) && !std::isfinite(tau))
      throw argument_error(concat("threshold must be a finite number, got ", tau));
    if (kind == selection_kind::factor && !(factor_scale > 0 && factor_scale <= 3.4e38f))
      throw argument_error(concat("factor must be positive, got ", factor_scale));
    if (kind == selection_kind::entropy_bounded && !(gamma >= 0))
      throw argument_error(concat("entropy bound gamma must be >= 0, got ", gamma));
    if (kind == selection_kind::stochastic && !(alg_temp > 0))
      throw argument_error(concat("alg_temp must be positive, got ", alg_temp));
  }

  // The key candidates are ordered by (highest first): the confidence, or for
  // the stochastic rule confidence / alg_temp + Gumbel noise keyed by the
  // candidate's draw site (id, rng_step, position).
  UNMASK_HOST_DEVICE float order_key(float confidence, const draw_site& site, const counter_rng& rng) const {
    if (kind != selection_kind::stochastic) return confidence;
    const float noise = rng.gumbel(random_purpose::selection, site.sequence, site.step, site.position, 0);
    return stochastic_order_key(confidence, alg_temp, noise);
  }

  // How many of the m candidates (scores sorted descending) to commit, given
  // the schedule's count; in [min(1, m), m].
  UNMASK_HOST_DEVICE std::int32_t commit_count(const float* sorted, std::int32_t m, std::int32_t scheduled,
                                               confidence_metric metric) const {
    if (m <= 0) return 0;
    std::int32_t k = 1;
    switch (kind) {
      case selection_kind::top_k:
      case selection_kind::stochastic:
        k = scheduled < m ? scheduled : m;
        return k < 0 ? 0 : k;
      case selection_kind::threshold:
        while (k < m && sorted[k] >= tau) ++k;
        return k;
      case selection_kind::threshold_dinfer: {
        const float bound = sorted[0] - 1e-5f < tau ? sorted[0] - 1e-5f : tau;
        k = 0;
        while (k < m && sorted[k] >= bound) ++k;
        return k;
      }
      case selection_kind::factor: {
        std::int32_t first_fail = m - 1;
        for (std::int32_t i = 1; i < m; ++i) {
          if (sorted[i] < 1.0f - factor_scale / float(i + 2)) {
            first_fail = i;
            break;
          }
        }
        if (m == 1) first_fail = 0;
        return (first_fail == 0 || first_fail == m - 1) ? first_fail + 1 : first_fail;
      }
      case selection_kind::entropy_bounded: {
        float sum = 0;
        k = 0;
        for (std::int32_t i = 0; i < m; ++i) {
          const float error = metric == confidence_metric::neg_entropy ? -sorted[i] : 1.0f - sorted[i];
          sum += error;
          // errors ascend along the order, so the prefix maximum is `error`
          if (sum - error > gamma) break;
          k = i + 1;
        }
        return k < 1 ? 1 : k;
      }
    }
    return k;
  }
};

inline selection_kind parse_selection_kind(const std::string& name) {
  if (name == "top_k" || name == "topk") return selection_kind::top_k;
  if (name == "threshold") return selection_kind::threshold;
  if (name == "threshold_dinfer" || name == "dinfer") return selection_kind::threshold_dinfer;
  if (name == "factor") return selection_kind::factor;
  if (name == "eb" || name == "entropy_bounded") return selection_kind::entropy_bounded;
  if (name == "stochastic" || name == "alg_temp") return selection_kind::stochastic;
  throw argument_error(concat("unknown selection rule '", name, "' (top_k, threshold, threshold_dinfer, factor, eb, stochastic)"));
}

}  // namespace unmask
