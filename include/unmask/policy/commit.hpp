// unmask/policy/commit.hpp
//
// The commit step of confidence decoding, for one sequence: its m candidates
// (the masked positions of its current block, in ascending position order,
// each with a proposed token and its confidence) are ordered by key =
// the rule's order key (the confidence, or for selection_kind::stochastic,
// Dream's alg_temp, confidence / alg_temp + Gumbel noise keyed by (id,
// rng_step, position)), highest first and stable (equal keys: the earlier position first); then
//   scheduled = schedule.count(block_step, steps, initial_masks, m)
//   take      = rule.commit_count(confidences in that order, m, scheduled, metric)
// and the first `take` tokens are written into the canvas. The types are
// shared by both backends: the CPU decode loops call commit_selection below,
// and the GPU runs the same step for a batch of sequences in one kernel
// (unmask/cuda/selection.hpp) with the same policy functions and the same
// order, which selection_order_bits defines for every float (-0 == +0, NaN
// last), so both commit the same tokens.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "unmask/core/config.hpp"
#include "unmask/core/dtype.hpp"
#include "unmask/policy/confidence.hpp"
#include "unmask/policy/decoding_policy.hpp"
#include "unmask/policy/selection.hpp"
#include "unmask/random/philox.hpp"
#include "unmask/schedule/count_schedule.hpp"

namespace unmask {

// One sequence's step (on the GPU a device array, one per sequence).
struct selection_sequence {
  std::int32_t candidate_begin = 0;  // index of its first candidate in positions / tokens / confidence
  std::int32_t candidate_count = 0;  // m: its masked positions in the current block
  std::int64_t canvas_offset = 0;    // where its canvas starts in `canvas`
  std::uint32_t id = 0;              // keys the random numbers (decode_request::id)
  std::uint32_t rng_step = 0;        // its own step counter
  std::int32_t block_step = 0;       // steps taken in the current block
  std::int32_t steps = 0;            // steps per block
  std::int32_t initial_masks = 0;    // masks in the block when it started
};

// What the commit step reads besides the candidates: the rule, the
// schedule (any types meeting unmask/policy/decoding_policy.hpp), the
// confidence metric in use (read by entropy_bounded) and the generator (read
// by rules whose order key draws noise, such as stochastic).
template <class Selection = selection_rule, class Schedule = count_schedule>
struct basic_selection_options {
  Selection rule{};
  Schedule schedule{};
  confidence_metric metric = confidence_metric::max_prob;
  counter_rng rng;
};
using selection_options = basic_selection_options<>;

// The options for a decoding policy.
template <class Policy>
using policy_selection_options = basic_selection_options<typename Policy::selection_type, typename Policy::schedule_type>;

// A float onto uint32 such that a > b implies bits(a) > bits(b) and a == b
// (-0 == +0 included) implies equal bits; NaN maps to 0, below every number
// (no number maps to 0: only the NaN 0xffffffff would).
UNMASK_HOST_DEVICE std::uint32_t selection_order_bits(float key) {
  const std::uint32_t bits = float_bits(key);
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return 0u;   // NaN
  if (magnitude == 0u) return 0x80000000u;  // -0 and +0
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// The order key of one candidate.
template <class Selection, class Schedule>
UNMASK_HOST_DEVICE float selection_order_key(const basic_selection_options<Selection, Schedule>& o,
                                             const selection_sequence& seq, float confidence, std::int32_t position) {
  return selection_key(o.rule, confidence, draw_site{seq.id, seq.rng_step, std::uint32_t(position)}, o.rng);
}

// The commit step for one sequence on the host: candidates [candidate_begin,
// candidate_begin + candidate_count) of positions / tokens / confidence;
// writes canvas[canvas_offset + position] for the committed ones, appends
// their positions to `committed_positions` (when given) in commit order, and
// returns how many were committed.
template <class Selection, class Schedule>
std::int32_t commit_selection(const selection_sequence& seq, const std::int32_t* positions,
                              const std::int32_t* tokens, const float* confidence,
                              const basic_selection_options<Selection, Schedule>& o, std::int32_t* canvas,
                              std::vector<std::int32_t>* committed_positions = nullptr) {
  const std::int32_t m = seq.candidate_count;
  if (m <= 0) return 0;
  thread_local std::vector<std::int32_t> order;
  thread_local std::vector<std::uint32_t> keys;
  thread_local std::vector<float> sorted;
  order.resize(std::size_t(m));
  keys.resize(std::size_t(m));
  sorted.resize(std::size_t(m));
  for (std::int32_t i = 0; i < m; ++i) {
    const std::int64_t c = seq.candidate_begin + i;
    keys[std::size_t(i)] = selection_order_bits(selection_order_key(o, seq, confidence[c], positions[c]));
  }
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int32_t a, std::int32_t b) { return keys[std::size_t(a)] > keys[std::size_t(b)]; });
  for (std::int32_t i = 0; i < m; ++i) sorted[std::size_t(i)] = confidence[seq.candidate_begin + order[std::size_t(i)]];
  const std::int32_t scheduled = o.schedule.count(seq.block_step, seq.steps, seq.initial_masks, m);
  const std::int32_t take = o.rule.commit_count(sorted.data(), m, scheduled, o.metric);
  for (std::int32_t i = 0; i < take; ++i) {
    const std::int64_t c = seq.candidate_begin + order[std::size_t(i)];
    canvas[seq.canvas_offset + positions[c]] = tokens[c];
    if (committed_positions) committed_positions->push_back(positions[c]);
  }
  return take;
}

}  // namespace unmask
