// unmask/policy/decoding_policy.hpp
//
// The decoding policy of confidence decoding, as types the user can replace.
// At every step of a block the decoder proposes a token and a confidence for
// each masked position (the candidates), orders the candidates by the
// selection rule's key, asks the schedule how many positions this step
// should commit, and asks the selection rule how many of the ordered
// candidates to commit given that count:
//   Schedule   std::int32_t count(step, steps, initial_masks, masks) const
//              tokens to commit at step `step` of `steps` of a block that
//              started with `initial_masks` masks and has `masks` now
//              (built-in: count_schedule, unmask/schedule/count_schedule.hpp)
//   Selection  std::int32_t commit_count(sorted, m, scheduled, metric) const
//              how many of the m candidates, their confidences sorted
//              descending in `sorted`, to commit; in [min(1, m), m] (fewer
//              than one stalls the block: the decoder stops after
//              block_length + steps steps with an error)
//              bool uses_schedule() const
//              whether commit_count follows `scheduled` (then the block
//              layout must give every block its steps, as for top-k)
//              optional: float order_key(confidence, draw_site, counter_rng) const
//              the key to sort by, highest first (default: the confidence)
//              optional: void validate() const, throwing argument_error
//              (built-in: selection_rule, unmask/policy/selection.hpp)
//   Processor  rewrites each candidate row's logits inside the token choice,
//              element by element: float choice_logit(l, v, site) const
//              and/or float confidence_logit(l, v, site) const (or one
//              operator() for both), optional bool active() const
//              (built-in: token_ban_processor, which holds LLaDA's
//              logits_eos_inf and confidence_eos_eot_inf;
//              unmask/policy/logits_processor.hpp)
//   Metric     a candidate's confidence from its row's statistics:
//              float operator()(const vocab_stats&, float token_logit,
//              const draw_site&, const counter_rng&) const (built-in: the
//              enum confidence_metric, whose run-time choice is
//              diffusion_settings::confidence; unmask/policy/token_rules.hpp)
//   Sampler    the key each token is chosen by (the largest wins):
//              float key(float logit, std::int32_t token, const draw_site&,
//              const counter_rng&) const (built-in: sampling_settings,
//              read from diffusion_settings::sampling; token_rules.hpp)
// Members marked UNMASK_HOST_DEVICE run on the CPU and inside the CUDA
// selection kernel (unmask/cuda/selection.hpp) and vocabulary pass
// (unmask/cuda/vocab_pass.hpp), which are instantiated for the policy's types; the types are passed to kernels by value, so they must be
// trivially copyable. decoding_policy<Schedule, Selection, Processor, Metric, Sampler> composes them and
// is what diffusion_decoder and resident_decoder take as their second
// template parameter; the defaults are the built-in types, each holding a
// run-time choice (the program's flags). docs/extending.md has examples.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "unmask/core/config.hpp"
#include "unmask/policy/confidence.hpp"
#include "unmask/policy/logits_processor.hpp"
#include "unmask/policy/token_rules.hpp"
#include "unmask/policy/selection.hpp"
#include "unmask/random/philox.hpp"
#include "unmask/schedule/count_schedule.hpp"

namespace unmask {

namespace detail {

template <class, class = void>
struct has_commit_count : std::false_type {};
template <class R>
struct has_commit_count<R, std::void_t<decltype(std::int32_t(std::declval<const R&>().commit_count(
                               std::declval<const float*>(), std::int32_t(0), std::int32_t(0), confidence_metric{})))>>
    : std::true_type {};

template <class, class = void>
struct has_uses_schedule : std::false_type {};
template <class R>
struct has_uses_schedule<R, std::void_t<decltype(bool(std::declval<const R&>().uses_schedule()))>> : std::true_type {};

template <class, class = void>
struct has_order_key : std::false_type {};
template <class R>
struct has_order_key<R, std::void_t<decltype(float(std::declval<const R&>().order_key(
                            0.0f, std::declval<const draw_site&>(), std::declval<const counter_rng&>())))>>
    : std::true_type {};

template <class, class = void>
struct has_schedule_count : std::false_type {};
template <class S>
struct has_schedule_count<S, std::void_t<decltype(std::int32_t(std::declval<const S&>().count(
                                 std::int32_t(0), std::int32_t(0), std::int32_t(0), std::int32_t(0))))>>
    : std::true_type {};

template <class, class = void>
struct has_validate : std::false_type {};
template <class T>
struct has_validate<T, std::void_t<decltype(std::declval<const T&>().validate())>> : std::true_type {};

}  // namespace detail

// Compile-time checks with messages naming what is missing.
template <class Selection>
constexpr bool check_selection_rule() {
  static_assert(detail::has_commit_count<Selection>::value,
                "a selection rule needs `UNMASK_HOST_DEVICE std::int32_t commit_count(const float* sorted, "
                "std::int32_t m, std::int32_t scheduled, confidence_metric metric) const`");
  static_assert(detail::has_uses_schedule<Selection>::value,
                "a selection rule needs `UNMASK_HOST_DEVICE bool uses_schedule() const`");
  static_assert(std::is_trivially_copyable<Selection>::value,
                "a selection rule is passed to CUDA kernels by value: it must be trivially copyable");
  return true;
}

template <class Schedule>
constexpr bool check_schedule() {
  static_assert(detail::has_schedule_count<Schedule>::value,
                "a schedule needs `UNMASK_HOST_DEVICE std::int32_t count(std::int32_t step, std::int32_t steps, "
                "std::int32_t initial_masks, std::int32_t masks) const`");
  static_assert(std::is_trivially_copyable<Schedule>::value,
                "a schedule is passed to CUDA kernels by value: it must be trivially copyable");
  return true;
}

// The order key of one candidate under `rule` (its order_key, else the confidence).
template <class Selection>
UNMASK_HOST_DEVICE float selection_key(const Selection& rule, float confidence, const draw_site& site,
                                       const counter_rng& rng) {
  if constexpr (detail::has_order_key<Selection>::value) {
    return rule.order_key(confidence, site, rng);
  } else {
    (void)site, (void)rng;
    return confidence;
  }
}

// Calls x.validate() when the type has one.
template <class T>
void validate_component(const T& x) {
  if constexpr (detail::has_validate<T>::value) x.validate();
}

template <class Schedule = count_schedule, class Selection = selection_rule, class Processor = token_ban_processor,
          class Metric = confidence_metric, class Sampler = sampling_settings>
struct decoding_policy {
  static_assert(check_schedule<Schedule>());
  static_assert(check_selection_rule<Selection>());
  static_assert(check_logits_processor<Processor>());
  static_assert(check_confidence_metric<Metric>());
  static_assert(check_token_sampler<Sampler>());
  using schedule_type = Schedule;
  using selection_type = Selection;
  using processor_type = Processor;
  using metric_type = Metric;
  using sampler_type = Sampler;

  Schedule schedule{};
  Selection selection{};
  Processor processor{};
  Metric metric{};     // the built-in enum is read from diffusion_settings::confidence instead
  Sampler sampler{};   // the built-in sampling_settings are read from diffusion_settings::sampling instead

  void validate() const {
    validate_component(schedule);
    validate_component(selection);
    validate_component(processor);
    if constexpr (!std::is_same<Metric, confidence_metric>::value) validate_component(metric);
    if constexpr (!std::is_same<Sampler, sampling_settings>::value) validate_component(sampler);
  }
};

// The built-in policy: the choices are read from diffusion_settings.
using builtin_policy = decoding_policy<>;

template <class>
struct is_decoding_policy : std::false_type {};
template <class S, class R, class P, class M, class T>
struct is_decoding_policy<decoding_policy<S, R, P, M, T>> : std::true_type {};

}  // namespace unmask
