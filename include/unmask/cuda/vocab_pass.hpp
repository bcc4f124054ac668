// unmask/cuda/vocab_pass.hpp
//
// The fused vocabulary pass: for each listed row of logits (logit_rows,
// vocab), one read of the row gives the token to propose and its confidence,
// the GPU twin of unmask::choose_token (with Dream's top-k / top-p filters,
// a first kernel finds each row's cut; see below). Every element updates two
// per-thread states: an online-softmax
// unmask::vocab_stats (max, runner-up, sum e^(l-m), sum e^(l-m)(l-m); see
// unmask/policy/vocab_stats.hpp) and a
// token_candidate (unmask/cuda/argmax.hpp) keyed by
//   temperature 0:  l_v                                 (greedy argmax)
//   temperature T:  l_v * (1 / T) + g_v,  g_v = -log(-log u_v)
// i.e. the Gumbel-max trick (Gumbel 1954; Maddison et al. 2014), which samples
// from softmax(l / T). u_v is counter_rng's uniform for (token, sequence,
// step, position, v), so the GPU draws exactly the CPU's noise, one Philox
// block per four vocabulary entries; products and sums are rounded as the
// CPU rounds them (no fma contraction). The excluded token (the mask id) is
// never a candidate but stays in the normalisation. cub::BlockReduce merges
// the per-thread states with vocab_stats::merge, and thread 0 writes
// tokens[i] and confidence[i] = confidence_of(metric, ...) on the raw logits,
// or on softmax(l / T) when sampling_settings::confidence_on_sampling_
// distribution is set and T > 0, exactly as choose_token decides.
//
// Two variants, 256 threads per block, rows read with 16-byte loads (a
// misaligned row start or a ragged end is read element by element):
//   single_block  one block per listed row;
//   split         phase 1: a (row, split) grid, each block reduces a
//                 contiguous chunk of the row into a vocab_partial in the
//                 workspace; phase 2: one thread per row merges its chunks in
//                 order and finishes. For a few rows over a large vocabulary.
// `automatic` splits when the single-block grid would be small: splits =
// min(64, floor(vocab / 8192), floor(256 / count)), split when that is >= 2,
// chunk sizes rounded up to a multiple of 64 tokens. The grid aims at about
// 256 blocks (two 256-thread blocks per SM on an A100's 108 or an H100's 132
// SMs) while keeping at least 8,192 tokens (32 per thread) per block, so the
// reduction and the workspace round trip stay small next to the reads. With
// a 126,464-token vocabulary: 1 to 17 rows get 15 splits of 8,448 tokens, 32
// rows 8 splits, 64 rows 4, 128 rows 2, 129 rows or more one block each. The
// choice depends only on (count, vocab), so vocab_pass_workspace_bytes(count,
// vocab) sizes the workspace without a device query. Tokens do not depend on
// the variant (keys are compared exactly, ties go to the smaller index);
// confidences agree to float rounding (the sums are reduced in another
// order). Greedy tokens equal the CPU's exactly; sampled tokens can differ
// only at near ties, where the device's logf and the host's differ in the
// last ulp.
//
// Dream's filters (sampling_settings::filters(): top_k > 0 or top_p < 1),
// where choose_token applies them: at T > 0, and at T = 0 only when the
// confidence is on the sampling distribution (else the argmax is the token
// and the filters change nothing). vocab_filter_kernel (unmask/cuda/
// vocab_filter.hpp) first writes each listed row's cut, its last kept token
// in the order of the scaled logits l * (1 / T), into the workspace, one
// block per row (radix select: about 6 to 12 reads of the row, from L2);
// then either variant scans as above with a template flag that tests each
// element against its row's cut (the filtered instances take a
// filtered_vocab_pass_params; the unfiltered ones, their parameters included,
// do not change): removed tokens are never candidates, and with
// confidence_on_sampling_distribution only the kept tokens enter the
// statistics (the confidence on the filtered, tempered distribution), else
// all of them, raw. Filtered tokens equal the CPU's for the same cut (up to
// the sampling near ties above); the cut itself is the CPU's except where
// the top-p mass before a token is within float rounding of p (the two sum
// the softmax normalisation in different orders); see vocab_filter.hpp.
// Workspace: vocab_pass_workspace_bytes(count, vocab, variant,
// /*filtered=*/true) adds count vocab_cuts after the split partials, at
// vocab_pass_cuts_offset.
//
// A listed row index outside [0, logit_rows) gets token -1 and a NaN
// confidence; a row whose every candidate logit is -inf or NaN gets token -1,
// and so does a row whose filters keep no token but the excluded one (where
// choose_token throws).
#pragma once

#include <cub/block/block_reduce.cuh>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "unmask/cuda/argmax.hpp"
#include "unmask/cuda/selection.hpp"
#include "unmask/cuda/vector_io.hpp"
#include "unmask/cuda/vocab_filter.hpp"
#include "unmask/policy/confidence.hpp"
#include "unmask/policy/logits_processor.hpp"
#include "unmask/policy/token_rules.hpp"
#include "unmask/policy/sampling.hpp"
#include "unmask/policy/vocab_stats.hpp"
#include "unmask/random/philox.hpp"

namespace unmask::cuda {

enum class vocab_pass_variant : std::uint8_t { automatic, single_block, split };

inline constexpr int vocab_pass_block = 256;
// 16-byte loads in flight per thread: four when the pass is bound by memory
// (greedy), two when the Gumbel noise makes it bound by arithmetic and
// registers matter more.
inline constexpr int vocab_pass_unroll = 4;
inline constexpr int vocab_pass_sampled_unroll = 2;
inline constexpr int vocab_pass_merge_block = 128;     // phase 2: threads (rows) per block
inline constexpr std::int64_t vocab_pass_target_blocks = 256;
inline constexpr std::int64_t vocab_pass_min_split_elements = 8192;
inline constexpr std::int64_t vocab_pass_max_splits = 64;
inline constexpr std::int64_t vocab_pass_split_granule = 64;  // chunk sizes are multiples of this

// What a block (single-block variant) or a chunk (split variant) contributes.
struct vocab_partial {
  vocab_stats stats;
  token_candidate best = token_candidate::none();

  UNMASK_HOST_DEVICE void merge(const vocab_partial& o) {
    stats.merge(o.stats);
    best.merge(o.best);
  }
};

struct merge_vocab_partials {
  UNMASK_HOST_DEVICE vocab_partial operator()(const vocab_partial& a, const vocab_partial& b) const {
    vocab_partial r = a;
    r.merge(b);
    return r;
  }
};

struct vocab_pass_options {
  sampling_settings sampling;
  confidence_metric metric = confidence_metric::max_prob;
  std::int32_t excluded_token = -1;  // the mask id; -1 excludes nothing
  counter_rng rng;
  vocab_pass_variant variant = vocab_pass_variant::automatic;
};

// How the rows are cut: `splits` blocks of `chunk` elements per row.
struct vocab_pass_plan {
  bool split = false;
  std::int64_t splits = 1;
  std::int64_t chunk = 0;
};

inline vocab_pass_plan plan_vocab_pass(std::int64_t count, std::int64_t vocab,
                                       vocab_pass_variant variant = vocab_pass_variant::automatic) {
  vocab_pass_plan plan;
  plan.chunk = vocab;
  if (count <= 0 || vocab <= 0 || variant == vocab_pass_variant::single_block) return plan;
  const std::int64_t by_work = vocab / vocab_pass_min_split_elements;
  std::int64_t splits = by_work < vocab_pass_max_splits ? by_work : vocab_pass_max_splits;
  if (variant == vocab_pass_variant::automatic) {
    const std::int64_t by_occupancy = vocab_pass_target_blocks / count;
    if (by_occupancy < splits) splits = by_occupancy;
    if (splits < 2) return plan;
  } else if (splits < 2) {
    splits = 2;  // forced: at least two chunks where the vocabulary allows
  }
  std::int64_t chunk = (vocab + splits - 1) / splits;
  chunk = (chunk + vocab_pass_split_granule - 1) / vocab_pass_split_granule * vocab_pass_split_granule;
  plan.split = true;
  plan.chunk = chunk;
  plan.splits = (vocab + chunk - 1) / chunk;
  return plan;
}

// Where the cuts start in the workspace: after the split partials, rounded up to 16 bytes.
inline std::size_t vocab_pass_cuts_offset(std::int64_t count, std::int64_t vocab,
                                          vocab_pass_variant variant = vocab_pass_variant::automatic) {
  const vocab_pass_plan plan = plan_vocab_pass(count, vocab, variant);
  const std::size_t partials = plan.split ? std::size_t(count) * std::size_t(plan.splits) * sizeof(vocab_partial) : 0;
  return (partials + 15u) / 16u * 16u;
}

// Bytes of workspace vocab_pass needs for `count` listed rows: the split
// partials (none single-block) and, with `filtered` (pass
// options.sampling.filters()), one vocab_cut per listed row after them.
// Without filters it is 0 when the pass runs single-block.
inline std::size_t vocab_pass_workspace_bytes(std::int64_t count, std::int64_t vocab,
                                              vocab_pass_variant variant = vocab_pass_variant::automatic,
                                              bool filtered = false) {
  const vocab_pass_plan plan = plan_vocab_pass(count, vocab, variant);
  const std::size_t partials = plan.split ? std::size_t(count) * std::size_t(plan.splits) * sizeof(vocab_partial) : 0;
  if (!filtered || count <= 0) return partials;
  return vocab_pass_cuts_offset(count, vocab, variant) + std::size_t(count) * sizeof(vocab_cut);
}

// Everything a vocab pass kernel reads besides the logits.
struct vocab_pass_params {
  std::int64_t logit_rows = 0;
  std::int64_t vocab = 0;
  const std::int32_t* rows = nullptr;  // (count) indices into the logits
  std::int32_t count = 0;
  const draw_site* sites = nullptr;    // (count); read when sampling or for the random metric
  counter_rng rng;
  float inverse_temperature = 1.0f;    // keys: l * inverse_temperature + g
  float stats_scale = 1.0f;            // statistics of l * stats_scale (1, or 1 / T)
  bool stats_on_choice = false;        // statistics of the choice reading (the sampling distribution)
  confidence_metric metric = confidence_metric::max_prob;
  std::int32_t excluded_token = -1;
  std::int32_t* tokens = nullptr;      // (count)
  float* confidence = nullptr;         // (count)
};

// What the filtered scan kernels read besides: the cuts, and whether only
// the kept tokens enter the statistics (confidence on the sampling
// distribution). A separate type, so the unfiltered kernels' parameters stay
// as they were.
struct filtered_vocab_pass_params : vocab_pass_params {
  const vocab_cut* cuts = nullptr;  // (count)
  bool stats_on_kept = false;
};

template <bool Filtered>
using vocab_scan_params = std::conditional_t<Filtered, filtered_vocab_pass_params, vocab_pass_params>;

// The four lanes counter_rng::bits(purpose, sequence, step, position, v)
// returns for v = 4 * group .. 4 * group + 3: one Philox block, same counter
// and key layout as unmask/random/philox.hpp (tests check the equality).
UNMASK_HOST_DEVICE void counter_block(const counter_rng& rng, random_purpose purpose, const draw_site& site,
                                      std::uint32_t group, std::uint32_t out[4]) {
  const std::uint32_t counter[4] = {group, site.position, site.step, site.sequence};
  const std::uint32_t key[2] = {std::uint32_t(rng.seed),
                                std::uint32_t(rng.seed >> 32) ^ (std::uint32_t(purpose) * 0x85EBCA6Bu)};
  philox4x32_10(counter, key, out);
}

// counter_rng::gumbel from the generator's 32 bits: u in (0, 1) from the top
// 24 bits, centred in their cell, then -log(-log u).
UNMASK_HOST_DEVICE float gumbel_of_bits(std::uint32_t bits) {
  const float u = (float(bits >> 8) + 0.5f) * (1.0f / 16777216.0f);
  return -logf(-logf(u));
}

// Gumbel noise for one draw site, caching the Philox block of the last group
// of four vocabulary entries (a thread visits its entries in increasing order).
struct token_noise {
  counter_rng rng;
  draw_site site;
  std::uint32_t group = 0xffffffffu;  // no vocabulary index (< 2^31) has this group
  std::uint32_t lane[4] = {0, 0, 0, 0};

  UNMASK_HOST_DEVICE float operator()(std::uint32_t v) {
    if ((v >> 2) != group) {
      group = v >> 2;
      counter_block(rng, random_purpose::token, site, group, lane);
    }
    const std::uint32_t k = v & 3u;  // selects, not an indexed load: the lanes stay in registers
    const std::uint32_t bits = k == 0 ? lane[0] : k == 1 ? lane[1] : k == 2 ? lane[2] : lane[3];
    return gumbel_of_bits(bits);
  }
};

namespace detail {

UNMASK_HOST_DEVICE draw_site site_of(const vocab_pass_params& p, std::int32_t i) {
  return p.sites != nullptr ? p.sites[i] : draw_site{};
}

UNMASK_HOST_DEVICE bool row_valid(const vocab_pass_params& p, std::int32_t row) {
  return row >= 0 && std::int64_t(row) < p.logit_rows;
}

// Thread `thread`'s partial over elements [begin, end) of one row. Filtered:
// tokens outside `cut` (in the order of l * inverse_temperature) are never
// candidates, and with stats_on_kept they are left out of the statistics.
// The logits processor gives each element's two readings (unmask/policy/
// logits_processor.hpp): the choice logit the keys, the cut and the sampling
// distribution are made of, and the raw one of the statistics otherwise.
template <int Block, bool Sampled, bool Filtered = false, class T, class Processor = no_logits_processor>
UNMASK_HOST_DEVICE vocab_partial scan_vocab(const T* row, std::int64_t begin, std::int64_t end, int thread,
                                            const vocab_pass_params& p, const draw_site& site,
                                            const vocab_cut& cut = vocab_cut::all(), bool stats_on_kept = false,
                                            const Processor& processor = Processor{}) {
  vocab_partial mine;
  [[maybe_unused]] token_noise noise{p.rng, site};
  constexpr int unroll = Sampled ? vocab_pass_sampled_unroll : vocab_pass_unroll;
  constexpr bool identity = is_identity_processor<Processor>::value;
  scan_range<Block, unroll, true>(row + begin, end - begin, begin, thread, [&](float raw, std::int64_t index) {
    const std::int32_t v = std::int32_t(index);
    const float l = identity ? raw : processed_choice_logit(processor, raw, v, site);
    const float s = identity || p.stats_on_choice ? mul_rn(l, p.stats_scale)
                                                  : processed_confidence_logit(processor, raw, v, site);
    if constexpr (Filtered) {
      const bool kept = cut.keeps(selection_order_bits(mul_rn(l, p.inverse_temperature)), v);
      if (kept || !stats_on_kept) mine.stats.push(s, v);
      if (!kept) return;
    } else {
      mine.stats.push(s, v);
    }
    if (v == p.excluded_token) return;
    if constexpr (Sampled) mine.best.consider(add_rn(mul_rn(l, p.inverse_temperature), noise(std::uint32_t(v))), v, s);
    else if constexpr (::unmask::detail::has_choice_key<Processor>::value)  // a sampler of one's own (token_rules)
      mine.best.consider(processor.choice_key(l, v, site, p.rng), v, s);
    else mine.best.consider(l, v, s);
  });
  return mine;
}

// Writes token and confidence of listed row i from the merged partial (the
// confidence: the rules' metric when they carry one, unmask/policy/
// token_rules.hpp, else p.metric).
template <class Rules = no_logits_processor>
UNMASK_HOST_DEVICE void finish_row(const vocab_partial& all, bool valid, const vocab_pass_params& p, std::int32_t i,
                                   const Rules& rules = Rules{}) {
  if (!valid) {
    p.tokens[i] = -1;
    p.confidence[i] = NAN;
    return;
  }
  p.tokens[i] = all.best.index;
  p.confidence[i] = rule_confidence(rules, p.metric, all.stats, all.best.logit, site_of(p, i), p.rng);
}

}  // namespace detail

// Single-block variant: block i reduces listed row i (Filtered: within the cut
// the filter kernel wrote for it).
template <class T, int Block, bool Sampled, bool Filtered = false, class Processor = no_logits_processor>
__global__ void __launch_bounds__(Block) vocab_pass_kernel(const T* logits, vocab_scan_params<Filtered> p,
                                                           Processor processor = {}) {
  static_assert(is_element_v<T>, "element type must be float, unmask::half or unmask::bfloat16");
  static_assert(Block % 32 == 0, "whole warps");
  const std::int32_t i = std::int32_t(blockIdx.x);
  const std::int32_t row = p.rows[i];
  const bool valid = detail::row_valid(p, row);  // uniform across the block
  vocab_partial mine;
  if (valid) {
    const T* x = logits + std::int64_t(row) * p.vocab;
    if constexpr (Filtered)
      mine = detail::scan_vocab<Block, Sampled, true>(x, 0, p.vocab, int(threadIdx.x), p, detail::site_of(p, i),
                                                      p.cuts[i], p.stats_on_kept, processor);
    else
      mine = detail::scan_vocab<Block, Sampled>(x, 0, p.vocab, int(threadIdx.x), p, detail::site_of(p, i),
                                                vocab_cut::all(), false, processor);
  }
  using reduce = cub::BlockReduce<vocab_partial, Block>;
  __shared__ typename reduce::TempStorage storage;
  const vocab_partial all = reduce(storage).Reduce(mine, merge_vocab_partials{});
  if (threadIdx.x == 0) detail::finish_row(all, valid, p, i, processor);
}

// Split variant, phase 1: block (i, s) reduces chunk s of listed row i into
// partials[i * gridDim.y + s].
template <class T, int Block, bool Sampled, bool Filtered = false, class Processor = no_logits_processor>
__global__ void __launch_bounds__(Block) vocab_pass_split_kernel(const T* logits, vocab_scan_params<Filtered> p,
                                                                 std::int64_t chunk, vocab_partial* partials,
                                                                 Processor processor = {}) {
  static_assert(is_element_v<T>, "element type must be float, unmask::half or unmask::bfloat16");
  static_assert(Block % 32 == 0, "whole warps");
  const std::int32_t i = std::int32_t(blockIdx.x);
  const std::int64_t split = blockIdx.y;
  const std::int32_t row = p.rows[i];
  const std::int64_t begin = split * chunk;
  const std::int64_t end = begin + chunk < p.vocab ? begin + chunk : p.vocab;
  vocab_partial mine;
  if (detail::row_valid(p, row) && begin < end) {
    const T* x = logits + std::int64_t(row) * p.vocab;
    if constexpr (Filtered)
      mine = detail::scan_vocab<Block, Sampled, true>(x, begin, end, int(threadIdx.x), p, detail::site_of(p, i),
                                                      p.cuts[i], p.stats_on_kept, processor);
    else
      mine = detail::scan_vocab<Block, Sampled>(x, begin, end, int(threadIdx.x), p, detail::site_of(p, i),
                                                vocab_cut::all(), false, processor);
  }
  using reduce = cub::BlockReduce<vocab_partial, Block>;
  __shared__ typename reduce::TempStorage storage;
  const vocab_partial all = reduce(storage).Reduce(mine, merge_vocab_partials{});
  if (threadIdx.x == 0) partials[std::int64_t(i) * gridDim.y + split] = all;
}

// Split variant, phase 2: thread i merges the chunks of listed row i in order.
template <int Block, class Processor = no_logits_processor>
__global__ void __launch_bounds__(Block)
    vocab_pass_merge_kernel(vocab_pass_params p, std::int32_t splits, const vocab_partial* partials,
                            Processor processor = {}) {
  const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.count) return;
  vocab_partial all;
  for (std::int32_t s = 0; s < splits; ++s) all.merge(partials[i * splits + s]);
  detail::finish_row(all, detail::row_valid(p, p.rows[i]), p, std::int32_t(i), processor);
}

namespace detail {

// Filtered: p is a filtered_vocab_pass_params, and the filter kernel runs first.
template <bool Sampled, bool Filtered, class T, class Processor>
cudaError_t launch_vocab_pass(const T* logits, const vocab_scan_params<Filtered>& p, const vocab_pass_plan& plan,
                              const vocab_filter_params& filter, vocab_partial* partials, const Processor& processor,
                              cudaStream_t stream) {
  if constexpr (Filtered) {
    const cudaError_t error = launch_vocab_filter(logits, filter, stream, processor, p.sites);
    if (error != cudaSuccess) return error;
  }
  if (!plan.split) {
    vocab_pass_kernel<T, vocab_pass_block, Sampled, Filtered, Processor>
        <<<unsigned(p.count), vocab_pass_block, 0, stream>>>(logits, p, processor);
    return launch_result();
  }
  const dim3 grid(static_cast<unsigned>(p.count), static_cast<unsigned>(plan.splits));
  vocab_pass_split_kernel<T, vocab_pass_block, Sampled, Filtered, Processor>
      <<<grid, vocab_pass_block, 0, stream>>>(logits, p, plan.chunk, partials, processor);
  const cudaError_t error = launch_result();
  if (error != cudaSuccess) return error;
  const unsigned blocks = unsigned((p.count + vocab_pass_merge_block - 1) / vocab_pass_merge_block);
  vocab_pass_merge_kernel<vocab_pass_merge_block, Processor>
      <<<blocks, vocab_pass_merge_block, 0, stream>>>(p, std::int32_t(plan.splits), partials, processor);
  return launch_result();
}

}  // namespace detail

// Whether vocab_pass applies the filters of `s`: choose_token applies them
// when sampling, and at temperature 0 only with the confidence on the
// sampling distribution (the argmax is always kept).
inline bool vocab_pass_filters(const sampling_settings& s) {
  return s.filters() && (s.temperature > 0.0f || s.confidence_on_sampling_distribution);
}

// Checks vocab_pass's arguments and fills the kernel parameters, the plan
// and, when the pass is filtered (vocab_pass_filters), the filter kernel's
// parameters with the cuts in the workspace (else filter.cuts is null):
// everything vocab_pass does before launching (tests run the kernels'
// per-thread code on the host with the same parameters). Returns
// cudaErrorInvalidValue for bad sizes, pointers or settings; with count == 0
// it returns cudaSuccess and there is nothing to launch.
inline cudaError_t prepare_vocab_pass(const void* logits, std::int64_t logit_rows, std::int64_t vocab,
                                      const std::int32_t* rows, std::int32_t count, const draw_site* sites,
                                      const vocab_pass_options& options, std::int32_t* tokens, float* confidence,
                                      void* workspace, std::size_t workspace_bytes, vocab_pass_params& p,
                                      vocab_pass_plan& plan, vocab_filter_params& filter) {
  const sampling_settings& s = options.sampling;
  if (logit_rows < 0 || vocab < 1 || vocab > INT32_MAX || count < 0) return cudaErrorInvalidValue;
  if (!(s.temperature >= 0.0f) || !std::isfinite(s.temperature) || s.top_k < 0 || !(s.top_p > 0.0f && s.top_p <= 1.0f))
    return cudaErrorInvalidValue;
  if (options.metric != confidence_metric::max_prob && options.metric != confidence_metric::margin &&
      options.metric != confidence_metric::neg_entropy && options.metric != confidence_metric::random)
    return cudaErrorInvalidValue;
  if (options.variant != vocab_pass_variant::automatic && options.variant != vocab_pass_variant::single_block &&
      options.variant != vocab_pass_variant::split)
    return cudaErrorInvalidValue;
  const bool sampled = s.temperature > 0.0f;
  const bool filtered = vocab_pass_filters(s);
  p = vocab_pass_params{};
  filter = vocab_filter_params{};
  plan = plan_vocab_pass(count, vocab, options.variant);
  if (count == 0) return cudaSuccess;
  if (logits == nullptr || rows == nullptr || tokens == nullptr || confidence == nullptr) return cudaErrorInvalidValue;
  if (sites == nullptr && (sampled || options.metric == confidence_metric::random)) return cudaErrorInvalidValue;
  if ((plan.split || filtered) &&
      (workspace == nullptr || !is_aligned(workspace, 16) ||
       workspace_bytes < vocab_pass_workspace_bytes(count, vocab, options.variant, filtered)))
    return cudaErrorInvalidValue;
  p.logit_rows = logit_rows;
  p.vocab = vocab;
  p.rows = rows;
  p.count = count;
  p.sites = sites;
  p.rng = options.rng;
  p.inverse_temperature = sampled ? 1.0f / s.temperature : 1.0f;  // as choose_token computes it
  p.stats_scale = sampled && s.confidence_on_sampling_distribution ? p.inverse_temperature : 1.0f;
  p.stats_on_choice = s.confidence_on_sampling_distribution && (sampled || filtered);
  p.metric = options.metric;
  p.excluded_token = options.excluded_token;
  p.tokens = tokens;
  p.confidence = confidence;
  if (filtered) {
    vocab_filter_params& f = filter;
    f.logit_rows = logit_rows;
    f.vocab = vocab;
    f.rows = rows;
    f.count = count;
    f.inverse_temperature = p.inverse_temperature;  // the filters order l / T (l at T = 0)
    f.top_k = s.top_k;
    f.top_p = s.top_p < 1.0f;
    f.top_p_threshold = filter_mass_threshold(s.top_p);
    f.cuts = reinterpret_cast<vocab_cut*>(static_cast<unsigned char*>(workspace) +
                                          vocab_pass_cuts_offset(count, vocab, options.variant));
  }
  return cudaSuccess;
}

// For i < count: tokens[i], confidence[i] of row rows[i] of logits
// (logit_rows, vocab), as unmask::choose_token(logits + rows[i] * vocab,
// vocab, options.sampling, options.metric, options.excluded_token,
// options.rng, sites[i]) returns them (top-k / top-p included; see the notes
// above on the cut). `sites` may be null at temperature 0 with a metric
// other than random. `workspace` holds at least vocab_pass_workspace_bytes(
// count, vocab, options.variant, options.sampling.filters()) bytes, aligned
// to 16 (it may be null when that is 0), and is not in use by a pass on
// another stream. With a logits processor (unmask/policy/logits_processor.hpp)
// the choice is choose_token's with that processor (token_rules: and with
// their confidence metric); a processor reads the rows' sites (null:
// draw_site{}). Returns cudaErrorInvalidValue for bad
// sizes, pointers or settings, else the launch error.
template <class T, class Processor = no_logits_processor>
cudaError_t vocab_pass(const T* logits, std::int64_t logit_rows, std::int64_t vocab, const std::int32_t* rows,
                       std::int32_t count, const draw_site* sites, const vocab_pass_options& options,
                       std::int32_t* tokens, float* confidence, void* workspace, std::size_t workspace_bytes,
                       cudaStream_t stream, const Processor& processor = Processor{}) {
  static_assert(is_element_v<T>, "element type must be float, unmask::half or unmask::bfloat16");
  static_assert(check_logits_processor<Processor>());
  if constexpr (!is_identity_processor<Processor>::value && !::unmask::detail::has_rule_confidence<Processor>::value)
    if (!processor_active(processor))
      return vocab_pass(logits, logit_rows, vocab, rows, count, sites, options, tokens, confidence, workspace,
                        workspace_bytes, stream, no_logits_processor{});
  // A sampler of one's own takes the built-in one's place: greedy settings only.
  if (::unmask::detail::has_choice_key<Processor>::value && !options.sampling.is_default()) return cudaErrorInvalidValue;
  vocab_pass_params p;
  vocab_pass_plan plan;
  vocab_filter_params filter;
  const cudaError_t error = prepare_vocab_pass(logits, logit_rows, vocab, rows, count, sites, options, tokens,
                                               confidence, workspace, workspace_bytes, p, plan, filter);
  if (error != cudaSuccess || p.count == 0) return error;
  vocab_partial* partials = static_cast<vocab_partial*>(workspace);
  const bool sampled = options.sampling.temperature > 0.0f;
  if (filter.cuts != nullptr) {
    filtered_vocab_pass_params fp;
    static_cast<vocab_pass_params&>(fp) = p;
    fp.cuts = filter.cuts;
    fp.stats_on_kept = options.sampling.confidence_on_sampling_distribution;
    return sampled ? detail::launch_vocab_pass<true, true>(logits, fp, plan, filter, partials, processor, stream)
                   : detail::launch_vocab_pass<false, true>(logits, fp, plan, filter, partials, processor, stream);
  }
  return sampled ? detail::launch_vocab_pass<true, false>(logits, p, plan, filter, partials, processor, stream)
                 : detail::launch_vocab_pass<false, false>(logits, p, plan, filter, partials, processor, stream);
}

}  // namespace unmask::cuda
