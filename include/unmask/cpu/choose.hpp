// unmask/cpu/choose.hpp
//
// Token choice for a batch of logit rows on the CPU: choose_token
// (unmask/policy/sampling.hpp) for every row, in parallel over rows, with the
// greedy case (temperature 0, the confidence on the raw logits: the default
// of every decoder) taking the vectorised statistics pass
// (unmask/cpu/kernels/vocab.inl) instead of the serial reference; with an
// active logits processor, the pass runs over the two readings of the row
// the processor writes (unmask/policy/logits_processor.hpp). The token is
// the same (argmax and ties are exact); confidences agree to rounding.
#pragma once

#include <cstdint>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/cpu/isa.hpp"
#include "unmask/cpu/parallel.hpp"
#include "unmask/cpu/simd/kernels.hpp"
#include "unmask/policy/confidence.hpp"
#include "unmask/policy/logits_processor.hpp"
#include "unmask/policy/token_rules.hpp"
#include "unmask/policy/sampling.hpp"

namespace unmask::cpu {

// The greedy choice for one row (what choose_token returns when
// s.temperature == 0, the confidence is on the raw logits and no processor
// is active); the confidence is the rules' metric when they carry one.
template <class Rules = no_logits_processor>
token_choice choose_greedy(const float* logits, std::int64_t vocab, confidence_metric metric, std::int32_t excluded,
                           const counter_rng& rng, const draw_site& site, isa_level level, const Rules& rules = {}) {
  vocab_stats stats;
  token_choice out;
  UNMASK_ISA_DISPATCH(level, isa::vocab_row_stats<isa::ops>(logits, vocab, excluded, stats, out.token));
  if (out.token < 0) throw numeric_error("choose_token: no token has a finite logit (NaN or -inf everywhere)");
  out.confidence = rule_confidence(rules, metric, stats, logits[out.token], site, rng);
  return out;
}

// The greedy choice with an active logits processor: the row's two readings
// written once, then the vectorised passes: the argmax of the choice
// reading (maxima only) and the statistics of the raw one.
template <class Rules>
token_choice choose_greedy_processed(const float* logits, std::int64_t vocab, confidence_metric metric,
                                     std::int32_t excluded, const counter_rng& rng, const draw_site& site,
                                     isa_level level, const Rules& rules) {
  thread_local std::vector<float> choice_row, raw_row;
  choice_row.resize(std::size_t(vocab));
  raw_row.resize(std::size_t(vocab));
  float* const choice = choice_row.data();  // no thread-local lookup in the loop
  float* const raw = raw_row.data();
  rewrite_rows(rules, logits, choice, raw, vocab, site);
  vocab_stats stats;
  token_choice out;
  std::int32_t raw_best = -1;
  UNMASK_ISA_DISPATCH(level, out.token = isa::row_best_token<isa::ops>(choice, vocab, excluded));
  if (out.token < 0) throw numeric_error("choose_token: no token has a finite logit (NaN or -inf everywhere)");
  UNMASK_ISA_DISPATCH(level, isa::vocab_row_stats<isa::ops>(raw, vocab, excluded, stats, raw_best));
  out.confidence = rule_confidence(rules, metric, stats, raw[out.token], site, rng);
  return out;
}

// out[i] = the choice for logits row i (count rows of vocab), i < count,
// with the logits processor applied and, when `processor` is token_rules,
// their confidence metric and sampler. Greedy choices take the vectorised
// passes (with an active processor, over the two readings it writes); the
// rest, and a sampler of one's own, the serial reference.
template <class Processor = no_logits_processor>
void choose_tokens(const float* logits, std::int64_t count, std::int64_t vocab, const sampling_settings& s,
                   confidence_metric metric, std::int32_t excluded, const counter_rng& rng, const draw_site* sites,
                   token_choice* out, isa_level level, const Processor& processor = {}) {
  const bool greedy = !(s.temperature > 0.0f) && !(s.filters() && s.confidence_on_sampling_distribution) &&
                      !::unmask::detail::has_choice_key<Processor>::value;
  const bool processed = processor_active(processor);
  parallel_for(0, count, [&](std::int64_t i) {
    const float* row = logits + i * vocab;
    if (!greedy) out[i] = choose_token(row, vocab, s, metric, excluded, rng, sites[i], processor);
    else if (processed) out[i] = choose_greedy_processed(row, vocab, metric, excluded, rng, sites[i], level, processor);
    else out[i] = choose_greedy(row, vocab, metric, excluded, rng, sites[i], level, processor);
  }, 8 * vocab);
}

}  // namespace unmask::cpu
