// unmask/policy/logits_processor.hpp
//
// Logits processors: a rewrite of each candidate row's logits applied inside
// the token choice, one element at a time, so it fuses into the single read
// of the row that both backends make (unmask/cpu/choose.hpp, the CUDA
// vocabulary pass in unmask/cuda/vocab_pass.hpp) instead of costing a pass
// of its own. The token choice reads a row twice over, and a processor may
// rewrite either reading:
//   choice_logit(l, v, site)      the logit token v is chosen by: the argmax,
//                                 the Gumbel-max key l / T + g, Dream's top-k
//                                 and top-p filters, and the sampling
//                                 distribution the confidence is read from
//                                 when sampling_settings::confidence_on_
//                                 sampling_distribution is set
//   confidence_logit(l, v, site)  the logit of the raw distribution the
//                                 confidence is otherwise read from (LLaDA's
//                                 softmax(logits)[x0])
// Each is optional and defaults to the identity; a type with only
//   float operator()(float l, std::int32_t v, const draw_site& site) const
// applies it at both. `site` is the row's draw site (sequence id, its step,
// the canvas position), so a processor can depend on where it is. Optional:
// bool active() const (false: the processor is the identity this run and the
// backends take their unprocessed fast paths), void validate() const, and,
// for the CPU, void rewrite_rows(logits, choice, raw, vocab, site) const,
// which writes both readings of a whole row at once (a sparse processor
// copies the row and patches a few entries instead of calling the element
// functions vocab times). The
// members are UNMASK_HOST_DEVICE to run inside the CUDA pass too, and the
// type is passed to kernels by value (trivially copyable).
//
// Built in:
//   no_logits_processor  the identity
//   token_ban_processor  logit -inf for listed tokens, at both readings or
//                        at the confidence reading only. It holds LLaDA's
//                        two options (ML-GSAI/LLaDA generate.py):
//                        logits_eos_inf sets logits[..., EOS] = -inf before
//                        the Gumbel noise, so EOS is never chosen and is out
//                        of the confidence's softmax (both readings);
//                        confidence_eos_eot_inf, after the argmax, sets the
//                        raw logits' EOT (<|eot_id|>) to -inf, which changes
//                        only the softmax the confidence is read from (its
//                        EOS assignment there hits logits_with_noise after
//                        its last use, so it changes nothing).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "unmask/core/config.hpp"
#include "unmask/core/error.hpp"
#include "unmask/random/philox.hpp"

namespace unmask {

struct no_logits_processor {
  UNMASK_HOST_DEVICE constexpr bool active() const { return false; }
};

struct token_ban_processor {
  static constexpr int capacity = 8;
  std::int32_t banned[capacity] = {};             // -inf at both readings
  std::int32_t banned_count = 0;
  std::int32_t confidence_banned[capacity] = {};  // -inf at the confidence reading only
  std::int32_t confidence_banned_count = 0;

  // LLaDA's options; eot is read only with confidence_eos_eot_inf.
  static token_ban_processor llada(bool logits_eos_inf, bool confidence_eos_eot_inf, std::int32_t eos,
                                   std::int32_t eot) {
    token_ban_processor p;
    if (logits_eos_inf) p.ban(eos);
    if (confidence_eos_eot_inf) p.ban_from_confidence(eot);
    return p;
  }
  token_ban_processor& ban(std::int32_t token) {
    if (banned_count >= capacity) throw argument_error(concat("token_ban_processor: more than ", capacity, " bans"));
    banned[banned_count++] = token;
    return *this;
  }
  token_ban_processor& ban_from_confidence(std::int32_t token) {
    if (confidence_banned_count >= capacity)
      throw argument_error(concat("token_ban_processor: more than ", capacity, " confidence bans"));
    confidence_banned[confidence_banned_count++] = token;
    return *this;
  }

  UNMASK_HOST_DEVICE bool active() const { return banned_count > 0 || confidence_banned_count > 0; }
  void validate() const {
    for (int i = 0; i < banned_count; ++i)
      if (banned[i] < 0) throw argument_error(concat("banned token id ", banned[i], " is negative"));
    for (int i = 0; i < confidence_banned_count; ++i)
      if (confidence_banned[i] < 0)
        throw argument_error(concat("token id ", confidence_banned[i],
                                    " banned from the confidence is negative (confidence_eos_eot_inf needs the "
                                    "end-of-turn id)"));
  }
  // Checks the ids against the model's vocabulary.
  void validate(std::int64_t vocab) const {
    validate();
    for (int i = 0; i < banned_count; ++i)
      if (banned[i] >= vocab) throw argument_error(concat("banned token id ", banned[i], " is outside the vocabulary"));
    for (int i = 0; i < confidence_banned_count; ++i)
      if (confidence_banned[i] >= vocab)
        throw argument_error(concat("token id ", confidence_banned[i], " banned from the confidence is outside the "
                                    "vocabulary"));
  }

  UNMASK_HOST_DEVICE float choice_logit(float logit, std::int32_t token, const draw_site&) const {
    for (int i = 0; i < banned_count; ++i)
      if (token == banned[i]) return -INFINITY;
    return logit;
  }
  // Both readings of a row: copies with the bans patched in.
  void rewrite_rows(const float* logits, float* choice, float* raw, std::int64_t vocab, const draw_site&) const {
    std::copy(logits, logits + vocab, choice);
    for (int i = 0; i < banned_count; ++i)
      if (banned[i] < vocab) choice[banned[i]] = -INFINITY;
    std::copy(choice, choice + vocab, raw);
    for (int i = 0; i < confidence_banned_count; ++i)
      if (confidence_banned[i] < vocab) raw[confidence_banned[i]] = -INFINITY;
  }
  UNMASK_HOST_DEVICE float confidence_logit(float logit, std::int32_t token, const draw_site& site) const {
    for (int i = 0; i < confidence_banned_count; ++i)
      if (token == confidence_banned[i]) return -INFINITY;
    return choice_logit(logit, token, site);
  }
};

namespace detail {

template <class, class = void>
struct has_choice_logit : std::false_type {};
template <class P>
struct has_choice_logit<P, std::void_t<decltype(float(std::declval<const P&>().choice_logit(
                               0.0f, std::int32_t(0), std::declval<const draw_site&>())))>> : std::true_type {};

template <class, class = void>
struct has_confidence_logit : std::false_type {};
template <class P>
struct has_confidence_logit<P, std::void_t<decltype(float(std::declval<const P&>().confidence_logit(
                                   0.0f, std::int32_t(0), std::declval<const draw_site&>())))>> : std::true_type {};

template <class, class = void>
struct has_logit_call : std::false_type {};
template <class P>
struct has_logit_call<P, std::void_t<decltype(float(std::declval<const P&>()(0.0f, std::int32_t(0),
                                                                               std::declval<const draw_site&>())))>>
    : std::true_type {};

template <class, class = void>
struct has_rewrite_rows : std::false_type {};
template <class P>
struct has_rewrite_rows<P, std::void_t<decltype(std::declval<const P&>().rewrite_rows(
                               std::declval<const float*>(), std::declval<float*>(), std::declval<float*>(),
                               std::int64_t(0), std::declval<const draw_site&>()))>> : std::true_type {};

template <class, class = void>
struct has_active : std::false_type {};
template <class P>
struct has_active<P, std::void_t<decltype(bool(std::declval<const P&>().active()))>> : std::true_type {};

}  // namespace detail

template <class Processor>
constexpr bool check_logits_processor() {
  static_assert(std::is_same<Processor, no_logits_processor>::value || detail::has_choice_logit<Processor>::value ||
                    detail::has_confidence_logit<Processor>::value || detail::has_logit_call<Processor>::value,
                "a logits processor needs `UNMASK_HOST_DEVICE float choice_logit(float logit, std::int32_t token, "
                "const draw_site& site) const`, `confidence_logit` of the same signature, or `operator()` of it");
  static_assert(std::is_trivially_copyable<Processor>::value,
                "a logits processor is passed to CUDA kernels by value: it must be trivially copyable");
  return true;
}

// The logit token v is chosen by.
template <class Processor>
UNMASK_HOST_DEVICE float processed_choice_logit(const Processor& p, float logit, std::int32_t token,
                                                const draw_site& site) {
  if constexpr (detail::has_choice_logit<Processor>::value) return p.choice_logit(logit, token, site);
  else if constexpr (detail::has_logit_call<Processor>::value && !detail::has_confidence_logit<Processor>::value)
    return p(logit, token, site);
  else return (void)p, (void)token, (void)site, logit;
}

// The logit of the raw distribution the confidence is read from.
template <class Processor>
UNMASK_HOST_DEVICE float processed_confidence_logit(const Processor& p, float logit, std::int32_t token,
                                                    const draw_site& site) {
  if constexpr (detail::has_confidence_logit<Processor>::value) return p.confidence_logit(logit, token, site);
  else if constexpr (detail::has_logit_call<Processor>::value && !detail::has_choice_logit<Processor>::value)
    return p(logit, token, site);
  else return (void)p, (void)token, (void)site, logit;
}

// Writes the choice and raw readings of one row (vocab) of logits.
template <class Processor>
void rewrite_rows(const Processor& p, const float* logits, float* choice, float* raw, std::int64_t vocab,
                  const draw_site& site) {
  if constexpr (detail::has_rewrite_rows<Processor>::value) {
    p.rewrite_rows(logits, choice, raw, vocab, site);
  } else {
    for (std::int64_t v = 0; v < vocab; ++v) {
      choice[v] = processed_choice_logit(p, logits[v], std::int32_t(v), site);
      raw[v] = processed_confidence_logit(p, logits[v], std::int32_t(v), site);
    }
  }
}

// Whether the processor changes anything this run (its active(), else true).
template <class Processor>
UNMASK_HOST_DEVICE bool processor_active(const Processor& p) {
  if constexpr (detail::has_active<Processor>::value) return p.active();
  else return (void)p, true;
}

}  // namespace unmask
