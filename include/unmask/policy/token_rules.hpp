// unmask/policy/token_rules.hpp
//
// What the token choice applies of a decoding policy, passed to the
// backends' choose_tokens / propose_tokens as one argument: the logits
// processor (unmask/policy/logits_processor.hpp) and, unless they are the
// built-in run-time choices, the confidence metric and the token sampler.
//
// A token sampler of one's own gives each token a key, and the token with
// the largest key is chosen (ties: the smaller index):
//   UNMASK_HOST_DEVICE float key(float logit, std::int32_t token,
//                                const draw_site& site, const counter_rng& rng) const
// where `logit` is the processor's choice reading. Every sampler that draws
// from a distribution q_v proportional to e^(f(l_v)) is of this form, by the
// Gumbel-max trick: key = f(l_v) + g_v with g_v = rng.gumbel(random_purpose::
// token, site.sequence, site.step, site.position, v), which is how the
// built-in sampler (sampling_settings: temperature, then Dream's top-k and
// top-p, which look at the whole row) samples softmax(l / T); a key without
// noise is a deterministic choice. A sampler of one's own takes the place of
// the built-in one, so the settings' temperature, top_k, top_p and
// confidence_on_sampling_distribution must be at their defaults (an error
// otherwise); the confidence is read from the raw distribution.
//
// A confidence metric of
// one's own computes a candidate's confidence from the statistics of its row
// (unmask/policy/vocab_stats.hpp: the maximum, runner-up, sum e^(l - m) and
// sum e^(l - m)(l - m) of the distribution the confidence is read from),
// the chosen token's logit in that distribution, and its draw site:
//   UNMASK_HOST_DEVICE float operator()(const vocab_stats& stats, float token_logit,
//                                       const draw_site& site, const counter_rng& rng) const
// (higher commits first). It runs inside the CPU's token choice and the CUDA
// vocabulary pass at the end of each row's reduction, so it costs no pass of
// its own. The built-in metric is the enum confidence_metric, the run-time
// choice diffusion_settings::confidence; a selection rule is handed that
// setting (entropy_bounded reads it to know whether confidences are
// entropies), whatever the policy's metric.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "unmask/core/config.hpp"
#include "unmask/policy/confidence.hpp"
#include "unmask/policy/logits_processor.hpp"
#include "unmask/policy/sampling_settings.hpp"
#include "unmask/policy/vocab_stats.hpp"
#include "unmask/random/philox.hpp"

namespace unmask {

namespace detail {

template <class, class = void>
struct is_metric_callable : std::false_type {};
template <class M>
struct is_metric_callable<M, std::void_t<decltype(float(std::declval<const M&>()(
                                 std::declval<const vocab_stats&>(), 0.0f, std::declval<const draw_site&>(),
                                 std::declval<const counter_rng&>())))>> : std::true_type {};

template <class, class = void>
struct has_rule_confidence : std::false_type {};
template <class R>
struct has_rule_confidence<R, std::void_t<decltype(float(std::declval<const R&>().confidence(
                                  std::declval<const vocab_stats&>(), 0.0f, std::declval<const draw_site&>(),
                                  std::declval<const counter_rng&>())))>> : std::true_type {};

template <class, class = void>
struct is_sampler_key : std::false_type {};
template <class S>
struct is_sampler_key<S, std::void_t<decltype(float(std::declval<const S&>().key(
                             0.0f, std::int32_t(0), std::declval<const draw_site&>(),
                             std::declval<const counter_rng&>())))>> : std::true_type {};

template <class, class = void>
struct has_choice_key : std::false_type {};
template <class R>
struct has_choice_key<R, std::void_t<decltype(float(std::declval<const R&>().choice_key(
                             0.0f, std::int32_t(0), std::declval<const draw_site&>(),
                             std::declval<const counter_rng&>())))>> : std::true_type {};

}  // namespace detail

// The built-in sampler's place in token_rules: none of its own.
struct builtin_sampler {};

template <class Sampler>
constexpr bool check_token_sampler() {
  static_assert(std::is_same<Sampler, sampling_settings>::value || std::is_same<Sampler, builtin_sampler>::value ||
                    detail::is_sampler_key<Sampler>::value,
                "a token sampler needs `UNMASK_HOST_DEVICE float key(float logit, std::int32_t token, const "
                "draw_site& site, const counter_rng& rng) const`");
  static_assert(std::is_trivially_copyable<Sampler>::value,
                "a token sampler is passed to CUDA kernels by value: it must be trivially copyable");
  return true;
}

template <class Metric>
constexpr bool check_confidence_metric() {
  static_assert(std::is_same<Metric, confidence_metric>::value || detail::is_metric_callable<Metric>::value,
                "a confidence metric needs `UNMASK_HOST_DEVICE float operator()(const vocab_stats& stats, float "
                "token_logit, const draw_site& site, const counter_rng& rng) const`");
  static_assert(std::is_trivially_copyable<Metric>::value,
                "a confidence metric is passed to CUDA kernels by value: it must be trivially copyable");
  return true;
}

// A logits processor with a user's confidence metric (confidence_metric: the
// built-in one) and a user's sampler (builtin_sampler: the built-in one).
template <class Processor, class Metric, class Sampler = builtin_sampler>
struct token_rules {
  static_assert(check_logits_processor<Processor>());
  static_assert(check_confidence_metric<Metric>());
  static_assert(check_token_sampler<Sampler>());
  static constexpr bool own_metric = !std::is_same<Metric, confidence_metric>::value;
  static constexpr bool own_sampler = !std::is_same<Sampler, builtin_sampler>::value;
  Processor processor{};
  Metric metric{};
  Sampler sampler{};

  UNMASK_HOST_DEVICE float choice_logit(float l, std::int32_t v, const draw_site& site) const {
    return processed_choice_logit(processor, l, v, site);
  }
  UNMASK_HOST_DEVICE float confidence_logit(float l, std::int32_t v, const draw_site& site) const {
    return processed_confidence_logit(processor, l, v, site);
  }
  void rewrite_rows(const float* logits, float* choice, float* raw, std::int64_t vocab, const draw_site& site) const {
    ::unmask::rewrite_rows(processor, logits, choice, raw, vocab, site);
  }
  // A sampler of one's own needs the element-by-element path on the CPU.
  UNMASK_HOST_DEVICE bool active() const { return own_sampler || processor_active(processor); }
  template <bool Own = own_metric, std::enable_if_t<Own, int> = 0>
  UNMASK_HOST_DEVICE float confidence(const vocab_stats& stats, float token_logit, const draw_site& site,
                                      const counter_rng& rng) const {
    return metric(stats, token_logit, site, rng);
  }
  template <bool Own = own_sampler, std::enable_if_t<Own, int> = 0>
  UNMASK_HOST_DEVICE float choice_key(float logit, std::int32_t token, const draw_site& site,
                                      const counter_rng& rng) const {
    return sampler.key(logit, token, site, rng);
  }
};

// Whether the rules leave the logits as they are, known at compile time.
template <class Rules>
struct is_identity_processor : std::is_same<Rules, no_logits_processor> {};
template <class Metric>
struct is_identity_processor<token_rules<no_logits_processor, Metric, builtin_sampler>> : std::true_type {};

// The confidence of a chosen token: the rules' metric when they carry one,
// else the built-in `metric` (random: a uniform number for the site).
template <class Rules>
UNMASK_HOST_DEVICE float rule_confidence(const Rules& rules, confidence_metric metric, const vocab_stats& stats,
                                         float token_logit, const draw_site& site, const counter_rng& rng) {
  if constexpr (detail::has_rule_confidence<Rules>::value) {
    return rules.confidence(stats, token_logit, site, rng);
  } else {
    (void)rules;
    const float uniform = metric == confidence_metric::random
                              ? rng.uniform(random_purpose::confidence, site.sequence, site.step, site.position, 0)
                              : 0.0f;
    return confidence_of(metric, stats, token_logit, uniform);
  }
}

// The key token v is chosen by, when the rules carry a sampler of their own
// (`logit`: the choice reading).
template <class Rules>
UNMASK_HOST_DEVICE float rule_choice_key(const Rules& rules, float logit, std::int32_t token, const draw_site& site,
                                         const counter_rng& rng) {
  if constexpr (detail::has_choice_key<Rules>::value) return rules.choice_key(logit, token, site, rng);
  else return (void)rules, (void)token, (void)site, (void)rng, logit;
}

// What a policy's token choice applies: its processor alone with the
// built-in metric and sampler, else token_rules.
template <class Processor, class Metric, class Sampler = sampling_settings>
auto make_token_rules(const Processor& processor, const Metric& metric, const Sampler& sampler = {}) {
  constexpr bool own_sampler = !std::is_same<Sampler, sampling_settings>::value;
  if constexpr (std::is_same<Metric, confidence_metric>::value && !own_sampler) {
    return (void)metric, (void)sampler, processor;
  } else if constexpr (!own_sampler) {
    (void)sampler;
    return token_rules<Processor, Metric>{processor, metric, {}};
  } else {
    return token_rules<Processor, Metric, Sampler>{processor, metric, sampler};
  }
}

}  // namespace unmask
