// unmask/policy/confidence.hpp
//
// Confidence metrics: how sure the model is of the token it proposes for a
// masked position; higher commits first (docs/policies.md, "Confidence metrics").
//   max_prob     p(x0), LLaDA "low_confidence" remasking (also Dream maskgit_plus)
//   margin       p(top1) - p(top2), Dream "topk_margin"
//   neg_entropy  sum_v p_v log p_v, Dream "entropy" (Dream's sign: higher = surer)
//   random       a uniform number, LLaDA "random" remasking
// All are read off a vocab_stats of the distribution the metric is defined on.
#pragma once

#include <cstdint>
#include <string>

#include "unmask/core/config.hpp"
#include "unmask/core/error.hpp"
#include "unmask/policy/vocab_stats.hpp"

namespace unmask {

enum class confidence_metric : std::uint8_t { max_prob, margin, neg_entropy, random };

// `token_logit` is the logit of the proposed token; `uniform` is only read by `random`.
UNMASK_HOST_DEVICE float confidence_of(confidence_metric metric, const vocab_stats& stats, float token_logit,
                                       float uniform) {
  switch (metric) {
    case confidence_metric::margin: return stats.margin();
    case confidence_metric::neg_entropy: return stats.negative_entropy();
    case confidence_metric::random: return uniform;
    default: return stats.probability(token_logit);
  }
}

inline const char* to_string(confidence_metric m) {
  switch (m) {
    case confidence_metric::margin: return "margin";
    case confidence_metric::neg_entropy: return "entropy";
    case confidence_metric::random: return "random";
    default: return "max_prob";
  }
}

inline confidence_metric parse_confidence_metric(const std::string& name) {
  if (name == "max_prob" || name == "low_confidence" || name == "low-confidence" || name == "maskgit_plus")
    return confidence_metric::max_prob;
  if (name == "margin" || name == "topk_margin") return confidence_metric::margin;
  if (name == "entropy" || name == "neg_entropy") return confidence_metric::neg_entropy;
  if (name == "random") return confidence_metric::random;
  throw argument_error(concat("unknown confidence metric '", name, "' (max_prob, margin, entropy, random)"));
}

}  // namespace unmask
