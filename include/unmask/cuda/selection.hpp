// unmask/cuda/selection.hpp
//
// Commit selection on the GPU: the step of the confidence decode loop that
// follows the token choice (diffusion_decoder::run_confidence_block), for a
// batch of sequences at once. Sequence s lists its m candidates, the masked
// positions of its current block in ascending position order, each with the
// proposed token and its confidence (what unmask/cuda/vocab_pass.hpp writes).
// The candidates are ordered by the rule's key (unmask::selection_key: the
// confidence, or for selection_kind::stochastic confidence / alg_temp +
// counter_rng::gumbel(selection, id, rng_step, position, 0)), highest first
// and stable (equal keys keep list order, i.e. the earlier position first);
// then
//   scheduled = schedule.count(block_step, steps, initial_masks, m)
//   take      = rule.commit_count(confidences in that order, m, scheduled, metric)
// and the first `take` candidates' tokens are written into the canvas, in
// place, and take is reported per sequence: the same host/device policy
// functions the CPU decoder calls (unmask/policy/selection.hpp,
// unmask/schedule/count_schedule.hpp), so the two commit the same tokens.
// The kernel is a template over the rule and schedule types, so a user's
// own (unmask/policy/decoding_policy.hpp) with host/device members runs here
// as the built-ins do.
//
// One thread block per sequence. Each thread loads Items consecutive
// candidates (a blocked arrangement) as (order bits of the key, list index)
// and cub::BlockRadixSort::SortDescending, a stable LSD radix sort, orders
// them; equal keys keep the blocked input order, which is the list order.
// The key goes through selection_order_bits, an order-preserving map of the
// float onto uint32 that also defines what cub leaves undefined: -0 and +0
// are equal (as `>` has them) and NaN sorts last, after -inf, NaNs in list
// order. (The CPU decoder's std::stable_sort with `>` has no defined order
// for NaN, and vocab_pass never writes NaN for a valid row; for keys without
// NaN both orders are the same.) The sorted confidences go to shared memory,
// thread 0 runs commit_count over them (a sequential loop, but every rule
// stops at its first failing score; only a block that commits nearly all of
// its candidates walks them all), and every thread writes the tokens of the
// ranks it holds below take. The stochastic key is divided and added with
// explicit round-to-nearest (no contraction), as the host rounds it; the
// Gumbel noise uses the device's logf, which may differ from the host's in
// the last ulp, so, as with vocab_pass's sampling, stochastic orders can
// differ from the CPU's only between keys that are that close. The schedule
// counts are the CPU's exactly (count_schedule rounds its products with
// mul_rn / add_rn, so nvcc cannot fuse them).
//
// Capacity: the caller passes max_candidates, a bound on every sequence's
// candidate count, which picks the kernel instance: up to 128 candidates
// 128 threads x 1, 512: 128 x 4, 1024: 256 x 4, 2048: 256 x 8, 4096: 512 x 8
// (selection_max_candidates; LLaDA's block lengths are 32 to 512). A larger
// bound is rejected before launching. A sequence whose count is negative or
// above max_candidates anyway gets committed = -1 and its canvas is left
// alone; the others are unaffected.
#pragma once

#include <cub/block/block_radix_sort.cuh>

#include <cstdint>

#include "unmask/cuda/vector_io.hpp"
#include "unmask/policy/commit.hpp"
#include "unmask/policy/confidence.hpp"
#include "unmask/policy/selection.hpp"
#include "unmask/random/philox.hpp"
#include "unmask/schedule/count_schedule.hpp"

namespace unmask::cuda {

inline constexpr std::int32_t selection_max_candidates = 4096;

// The per-sequence record, the options and the order (shared with the CPU's
// commit_selection).
using unmask::basic_selection_options;
using unmask::selection_options;
using unmask::selection_order_bits;
using unmask::selection_order_key;
using unmask::selection_sequence;
using unmask::stochastic_order_key;

// Candidates per sequence of the kernel instance serving max_candidates; 0 when none does.
inline std::int32_t selection_capacity(std::int32_t max_candidates) {
  if (max_candidates < 0) return 0;
  if (max_candidates <= 128) return 128;
  if (max_candidates <= 512) return 512;
  if (max_candidates <= 1024) return 1024;
  if (max_candidates <= 2048) return 2048;
  if (max_candidates <= selection_max_candidates) return selection_max_candidates;
  return 0;
}

// Everything the kernel reads.
template <class Selection = selection_rule, class Schedule = count_schedule>
struct selection_params {
  const selection_sequence* sequences = nullptr;  // (count)
  const std::int32_t* positions = nullptr;        // (candidates) in the sequence's canvas; key the noise too
  const std::int32_t* tokens = nullptr;           // (candidates)
  const float* confidence = nullptr;              // (candidates)
  Selection rule{};
  Schedule schedule{};
  confidence_metric metric = confidence_metric::max_prob;
  counter_rng rng;
  std::int32_t* canvas = nullptr;
  std::int32_t* committed = nullptr;              // (count)
  std::int32_t max_candidates = 0;                // the caller's bound, <= the instance's capacity
};

// Block s selects and commits for sequence s.
template <int Block, int Items, class Selection, class Schedule>
__global__ void __launch_bounds__(Block) select_and_commit_kernel(selection_params<Selection, Schedule> p) {
  static_assert(Block % 32 == 0, "whole warps");
  constexpr int capacity = Block * Items;
  using radix_sort = cub::BlockRadixSort<std::uint32_t, Block, Items, std::int32_t>;
  __shared__ typename radix_sort::TempStorage sort_storage;
  __shared__ float sorted_scores[capacity];
  __shared__ std::int32_t take_shared;

  const std::int32_t s = std::int32_t(blockIdx.x);
  const selection_sequence seq = p.sequences[s];
  const std::int32_t m = seq.candidate_count;
  // Uniform across the block, so returning before the barriers is safe.
  if (m < 0 || m > p.max_candidates || m > capacity) {
    if (threadIdx.x == 0) p.committed[s] = -1;
    return;
  }
  if (m == 0) {
    if (threadIdx.x == 0) p.committed[s] = 0;
    return;
  }
  const std::int64_t begin = seq.candidate_begin;

  // Blocked arrangement: thread t holds list indices t * Items + j. Padding
  // (index >= m) gets the lowest bits and, being later in the list, sorts
  // after every real candidate, NaNs included.
  std::uint32_t keys[Items];
  std::int32_t index[Items];
  UNMASK_UNROLL
  for (int j = 0; j < Items; ++j) {
    const std::int32_t i = std::int32_t(threadIdx.x) * Items + j;
    index[j] = i;
    keys[j] = 0u;
    if (i < m) {
      const draw_site site{seq.id, seq.rng_step, std::uint32_t(p.positions[begin + i])};
      keys[j] = selection_order_bits(unmask::selection_key(p.rule, p.confidence[begin + i], site, p.rng));
    }
  }
  radix_sort(sort_storage).SortDescending(keys, index);

  // Thread t now holds ranks t * Items + j (blocked), index[j] the candidate at that rank.
  UNMASK_UNROLL
  for (int j = 0; j < Items; ++j) {
    const std::int32_t rank = std::int32_t(threadIdx.x) * Items + j;
    if (rank < m) sorted_scores[rank] = p.confidence[begin + index[j]];
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const std::int32_t scheduled = p.schedule.count(seq.block_step, seq.steps, seq.initial_masks, m);
    const std::int32_t take = p.rule.commit_count(sorted_scores, m, scheduled, p.metric);
    take_shared = take;
    p.committed[s] = take;
  }
  __syncthreads();
  const std::int32_t take = take_shared;
  UNMASK_UNROLL
  for (int j = 0; j < Items; ++j) {
    const std::int32_t rank = std::int32_t(threadIdx.x) * Items + j;
    if (rank < take) {
      const std::int64_t c = begin + index[j];
      p.canvas[seq.canvas_offset + p.positions[c]] = p.tokens[c];
    }
  }
}

namespace detail {

template <int Block, int Items, class Selection, class Schedule>
cudaError_t launch_selection(const selection_params<Selection, Schedule>& p, std::int32_t count, cudaStream_t stream) {
  select_and_commit_kernel<Block, Items><<<unsigned(count), Block, 0, stream>>>(p);
  return launch_result();
}

// The built-in rule and schedule: what validate() accepts, and known kinds
// (a user's type is validated by the decoder, on the host).
inline bool selection_rule_ok(const selection_rule& r) {
  switch (r.kind) {
    case selection_kind::top_k:
    case selection_kind::threshold:
    case selection_kind::threshold_dinfer: break;
    case selection_kind::factor:
      if (!(r.factor_scale > 0.0f)) return false;
      break;
    case selection_kind::entropy_bounded:
      if (!(r.gamma >= 0.0f)) return false;
      break;
    case selection_kind::stochastic:
      if (!(r.alg_temp > 0.0f)) return false;
      break;
    default: return false;
  }
  return true;
}
inline bool schedule_ok(const count_schedule& s) {
  switch (s.kind) {
    case count_schedule_kind::llada_even:
    case count_schedule_kind::dream:
    case count_schedule_kind::llama_cpp: return true;
    default: return false;
  }
}
template <class T>
bool selection_rule_ok(const T&) { return true; }
template <class T>
bool schedule_ok(const T&) { return true; }

template <class Selection, class Schedule>
bool selection_options_ok(const basic_selection_options<Selection, Schedule>& o) {
  if (!selection_rule_ok(o.rule) || !schedule_ok(o.schedule)) return false;
  switch (o.metric) {
    case confidence_metric::max_prob:
    case confidence_metric::margin:
    case confidence_metric::neg_entropy:
    case confidence_metric::random: return true;
    default: return false;
  }
}

}  // namespace detail

// For each of the `count` sequences (a device array), orders its candidates
// (positions, tokens, confidence: device arrays indexed from the sequence's
// candidate_begin) and writes the tokens the rule commits into `canvas` at
// canvas_offset + position, as the CPU decoder's step does; committed[s] =
// the number written. A position is the candidate's index in its sequence's
// canvas (the decoder's block_begin + r, which also keys the stochastic
// rule's noise); candidates are listed in ascending position order, with
// distinct positions inside the canvas (not checked). max_candidates
// bounds every candidate_count and picks the kernel instance; a sequence
// above it (or with a negative count) gets committed[s] = -1 and is neither
// read nor written. Returns cudaErrorInvalidValue for count < 0,
// max_candidates outside [0, selection_max_candidates], null pointers
// (positions, tokens and confidence may be null when max_candidates is 0),
// an unknown enum value or options the CPU decoder's validate() rejects
// (factor <= 0, gamma < 0, alg_temp <= 0, NaN); cudaSuccess without
// launching when count is 0; else the launch error.
template <class Selection, class Schedule>
cudaError_t select_and_commit(const selection_sequence* sequences, std::int32_t count, std::int32_t max_candidates,
                              const std::int32_t* positions, const std::int32_t* tokens, const float* confidence,
                              const basic_selection_options<Selection, Schedule>& options, std::int32_t* canvas,
                              std::int32_t* committed, cudaStream_t stream) {
  const std::int32_t capacity = selection_capacity(max_candidates);
  if (count < 0 || capacity == 0 || !detail::selection_options_ok(options)) return cudaErrorInvalidValue;
  if (count == 0) return cudaSuccess;
  if (sequences == nullptr || canvas == nullptr || committed == nullptr) return cudaErrorInvalidValue;
  if (max_candidates > 0 && (positions == nullptr || tokens == nullptr || confidence == nullptr))
    return cudaErrorInvalidValue;
  selection_params<Selection, Schedule> p;
  p.sequences = sequences;
  p.positions = positions;
  p.tokens = tokens;
  p.confidence = confidence;
  p.rule = options.rule;
  p.schedule = options.schedule;
  p.metric = options.metric;
  p.rng = options.rng;
  p.canvas = canvas;
  p.committed = committed;
  p.max_candidates = max_candidates;
  switch (capacity) {
    case 128: return detail::launch_selection<128, 1>(p, count, stream);
    case 512: return detail::launch_selection<128, 4>(p, count, stream);
    case 1024: return detail::launch_selection<256, 4>(p, count, stream);
    case 2048: return detail::launch_selection<256, 8>(p, count, stream);
    default: return detail::launch_selection<512, 8>(p, count, stream);
  }
}

}  // namespace unmask::cuda
