// unmask/policy/sampling.hpp
//
// Choosing the token for one masked position, and its confidence.
//  - Temperature 0: the argmax of the logits.
//  - Temperature T > 0: the Gumbel-max trick, argmax_v (l_v / T + g_v) with
//    g_v = -log(-log u_v) from the counter-based generator, which samples
//    exactly from softmax(l / T). LLaDA's add_gumbel_noise computes
//    argmax exp(l) / (-log u)^T in float64, the same ordering (SPEC section 5).
//  - Dream's filters, in Dream's order: temperature, then top-p (sort by
//    logit, keep token i when the probability mass before it is <= p, so the
//    top token always stays), then top-k (keep logits >= the k-th largest).
// The confidence is computed on one of two distributions: the raw logits
// (LLaDA: softmax(l)[x0] even when x0 was sampled with noise) or the filtered,
// tempered sampling distribution (Dream's sample_tokens). The mask token is
// never proposed (a committed mask would never be decoded), but stays in the
// normalisation of the raw distribution as in the references. A logits
// processor (unmask/policy/logits_processor.hpp) gives the two readings of a
// row: the logits the token is chosen by (and the sampling distribution) and
// those of the raw distribution.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/policy/confidence.hpp"
#include "unmask/policy/logits_processor.hpp"
#include "unmask/policy/sampling_settings.hpp"
#include "unmask/policy/token_rules.hpp"
#include "unmask/policy/vocab_stats.hpp"
#include "unmask/random/philox.hpp"

namespace unmask {

struct token_choice {
  std::int32_t token = -1;
  float confidence = 0.0f;
};

namespace detail {

// Marks kept[v] = true for the tokens Dream's top-p and top-k filters keep,
// given logits already divided by the temperature.
inline void dream_filter(const float* scaled, std::int64_t vocab, const sampling_settings& s, std::vector<char>& kept) {
  kept.assign(std::size_t(vocab), 1);
  std::vector<std::int32_t> order(static_cast<std::size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) { return scaled[a] > scaled[b]; });
  if (s.top_p < 1.0f) {
    vocab_stats all;
    for (std::int64_t v = 0; v < vocab; ++v) all.push(scaled[v], std::int32_t(v));
    double mass_before = 0;
    for (std::size_t i = 0; i < order.size(); ++i) {
      if (i > 0 && mass_before > s.top_p) kept[std::size_t(order[i])] = 0;
      mass_before += all.probability(scaled[order[i]]);
    }
  }
  if (s.top_k > 0) {
    // The k-th largest among the tokens top-p kept (removed ones are -inf).
    std::int64_t seen = 0;
    float kth = -INFINITY;
    for (std::int32_t v : order) {
      if (!kept[std::size_t(v)]) continue;
      kth = scaled[v];
      if (++seen == s.top_k) break;
    }
    for (std::int64_t v = 0; v < vocab; ++v)
      if (scaled[v] < kth) kept[std::size_t(v)] = 0;
  }
}

}  // namespace detail

namespace detail {

// choose_token over two readings of the row: `choice` (the logits the token
// is chosen by) and `raw` (those of the distribution the confidence is read
// from unless it is on the sampling distribution); the same array without a
// logits processor. The confidence is the rules' metric when they carry one
// (unmask/policy/token_rules.hpp), else `metric`; a sampler the rules carry
// runs with the settings at their defaults (greedy, no filters), its key
// taking the logit's place.
template <class Rules>
token_choice choose_token_rows(const float* choice, const float* raw, std::int64_t vocab, const sampling_settings& s,
                               confidence_metric metric, std::int32_t excluded_token, const counter_rng& rng,
                               const draw_site& site, const Rules& rules) {
  token_choice out;
  const bool sampled = s.temperature > 0.0f;
  if (!sampled && !(s.filters() && s.confidence_on_sampling_distribution)) {
    // One pass: argmax (mask excluded) and the statistics of the raw logits.
    vocab_stats stats;
    float best = -INFINITY;
    for (std::int64_t v = 0; v < vocab; ++v) {
      stats.push(raw[v], std::int32_t(v));
      if (v == excluded_token) continue;
      // A sampler of the rules' own gives the key (unmask/policy/token_rules.hpp), else the logit.
      const float key = rule_choice_key(rules, choice[v], std::int32_t(v), site, rng);
      if (key > best) best = key, out.token = std::int32_t(v);
    }
    if (out.token < 0) throw numeric_error("choose_token: no token has a finite logit (NaN or -inf everywhere)");
    out.confidence = rule_confidence(rules, metric, stats, raw[out.token], site, rng);
    return out;
  }
  thread_local std::vector<float> scaled;
  thread_local std::vector<char> kept;
  scaled.resize(std::size_t(vocab));
  const float inverse_t = sampled ? 1.0f / s.temperature : 1.0f;
  for (std::int64_t v = 0; v < vocab; ++v) scaled[std::size_t(v)] = choice[v] * inverse_t;
  if (s.filters()) dream_filter(scaled.data(), vocab, s, kept);
  else kept.assign(std::size_t(vocab), 1);
  float best = -INFINITY;
  for (std::int64_t v = 0; v < vocab; ++v) {
    if (v == excluded_token || !kept[std::size_t(v)]) continue;
    const float key = sampled ? scaled[std::size_t(v)] +
                                    rng.gumbel(random_purpose::token, site.sequence, site.step, site.position, std::uint32_t(v))
                              : scaled[std::size_t(v)];
    if (key > best) best = key, out.token = std::int32_t(v);
  }
  if (out.token < 0) throw argument_error("choose_token: the filters removed every token");
  vocab_stats stats;
  if (s.confidence_on_sampling_distribution) {
    for (std::int64_t v = 0; v < vocab; ++v)
      if (kept[std::size_t(v)]) stats.push(scaled[std::size_t(v)], std::int32_t(v));
    out.confidence = rule_confidence(rules, metric, stats, scaled[std::size_t(out.token)], site, rng);
  } else {
    for (std::int64_t v = 0; v < vocab; ++v) stats.push(raw[v], std::int32_t(v));
    out.confidence = rule_confidence(rules, metric, stats, raw[out.token], site, rng);
  }
  return out;
}

}  // namespace detail

// Chooses the token of one row of logits (vocab) and its confidence, with
// the logits processor applied to both readings of the row
// (unmask/policy/logits_processor.hpp); `processor` may be token_rules,
// which also carry a confidence metric of one's own.
template <class Processor = no_logits_processor>
token_choice choose_token(const float* logits, std::int64_t vocab, const sampling_settings& s,
                          confidence_metric metric, std::int32_t excluded_token, const counter_rng& rng,
                          const draw_site& site, const Processor& processor = {}) {
  if (!processor_active(processor))
    return detail::choose_token_rows(logits, logits, vocab, s, metric, excluded_token, rng, site, processor);
  thread_local std::vector<float> choice, raw;
  choice.resize(std::size_t(vocab));
  raw.resize(std::size_t(vocab));
  rewrite_rows(processor, logits, choice.data(), raw.data(), vocab, site);
  return detail::choose_token_rows(choice.data(), raw.data(), vocab, s, metric, excluded_token, rng, site, processor);
}

}  // namespace unmask
