// unmask/cuda/vocab_filter.hpp
//
// Dream's top-k / top-p filters on the GPU (unmask::detail::dream_filter in
// unmask/policy/sampling.hpp), the first half of a filtered vocabulary pass
// (unmask/cuda/vocab_pass.hpp). Over the scaled logits s_v = l_v * (1 / T)
// (1 / T = 1 at temperature 0), ordered by s descending and, on equal s, by
// index ascending (the CPU's stable sort), top-p keeps a prefix of the order,
// the first K_p = min{K >= 1 : mass(first K) > p} tokens (the whole row when
// the mass never exceeds p), with the mass the softmax of all the scaled
// logits, the excluded token included; top-k then keeps the tokens of that
// prefix whose s is at least the s of its min(k, K_p)-th token. The kept set
// is a prefix of the order again, so one row's filters come down to its last
// kept token, a `vocab_cut`: keep v iff key(s_v) > cut.key, or key(s_v) ==
// cut.key and v <= cut.index, where key = selection_order_bits (unmask/cuda/
// selection.hpp), the order-preserving map of a float onto uint32 that the
// commit selection sorts by (-0 and +0 equal). cut.index = INT32_MAX keeps
// every token of the key (top-k's cut: all ties of the k-th value);
// vocab_cut::all() keeps the whole row.
//
// The cut is found by radix select, one 512-thread block per listed row,
// without sorting: each token is one 64-bit number c = key << b | (vocab - 1
// - v), b = the bits of vocab - 1, so that the order is c descending and
// every c is distinct. Passes walk c from the top, 8 bits at a time (4 passes
// over the key, then the index bits in 8-bit passes, the last one narrower):
// a pass reads the row (from L2 after the first time), histograms the digit
// of the tokens whose higher bits equal the prefix found so far, counts and
// masses per bin, then cub::BlockScan accumulates the bins from the highest
// digit down and the one thread whose bin holds the target fixes the next
// digit. The target is a rank (top-k: the k-th token) or a mass (top-p: the
// first token at which the mass of the tokens before it plus its own exceeds
// p). A select stops as soon as its prefix matches one token (one more pass
// finds it) or, for top-k, once the key is known: the k-th value's ties are
// all kept, so the cut is (key, INT32_MAX) and the index does not matter.
// Top-p runs first; top-k runs only when k < K_p and yields the cut unless
// the ties of its k-th value reach past K_p, where the top-p cut stands. A
// row takes one pass for the softmax statistics (cub::BlockReduce with
// vocab_stats::merge), up to 4 + ceil(b / 8) for top-p and up to 4 for top-k
// (a find replaces the passes a select has left): at most 12 reads for
// Qwen's 152,064 tokens (b = 18) before the pass's own, typically 6 to 9.
// Filters are the rare path: a row is served by one block, whatever the
// vocabulary.
//
// Masses are fixed point: a token's probability, vocab_stats::probability of
// its scaled logit (the float the CPU computes), times 2^62, truncated. Every
// probability above 2^-39 is exact in that unit, sums of integers do not
// depend on their order, so the cut does not depend on the thread count or
// on the order of atomic updates, and mass > p is tested exactly as M >
// floor(p * 2^62). The CPU accumulates the same probabilities in double,
// which agrees to about 1e-16. What can differ is the normalisation: the CPU
// sums e^(s - max) sequentially in float, the block in a tree, so the two
// totals can differ by float rounding, and where the mass before a token is
// that close to p the GPU may keep one token more or fewer than the CPU (the
// tests accept such a cut only when it is that close to p, and then check
// the token and confidence for the cut the GPU took). Top-k alone is exact.
//
// Histograms live in shared memory, one copy per pair of warps; on sm_80 and
// later a warp first merges its lanes that share a digit (__match_any_sync,
// then __reduce_add_sync over three 21-bit slices of the 62-bit mass), so a
// pass over a skewed digit (the exponent byte) costs one atomic per digit per
// warp instead of one per token. NaN scaled logits sort after -inf (key 0)
// and are not supported with filters (the CPU's sort has no order for them).
// The per-thread code and the select's bookkeeping are host/device functions
// and the driver, filter_cut, takes the block operations as an "engine", so
// the tests run the same code thread by thread on the host.
#pragma once

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "unmask/cuda/selection.hpp"
#include "unmask/cuda/vector_io.hpp"
#include "unmask/policy/logits_processor.hpp"
#include "unmask/policy/vocab_stats.hpp"

namespace unmask::cuda {

inline constexpr int vocab_filter_block = 512;
inline constexpr int vocab_filter_unroll = 2;
inline constexpr int vocab_filter_digit_bits = 8;
inline constexpr int vocab_filter_bins = 1 << vocab_filter_digit_bits;
inline constexpr int vocab_filter_histograms = 8;  // shared-memory copies, warp w uses copy w % 8

// One row's filters: its last kept token in the order (see above).
struct vocab_cut {
  std::uint32_t key;   // selection_order_bits of its scaled logit
  std::int32_t index;  // its index; INT32_MAX keeps every token of the key

  UNMASK_HOST_DEVICE static vocab_cut all() { return {0u, INT32_MAX}; }
  // Whether the token v, whose scaled logit has order bits `k`, is kept.
  UNMASK_HOST_DEVICE bool keeps(std::uint32_t k, std::int32_t v) const { return k > key || (k == key && v <= index); }
};

// Everything the filter kernel reads, and where it writes.
struct vocab_filter_params {
  std::int64_t logit_rows = 0;
  std::int64_t vocab = 0;
  const std::int32_t* rows = nullptr;  // (count) indices into the logits
  std::int32_t count = 0;
  float inverse_temperature = 1.0f;    // s = l * inverse_temperature (rounded once)
  std::int32_t top_k = 0;              // 0: off
  bool top_p = false;                  // on when p < 1
  std::uint64_t top_p_threshold = 0;   // floor(p * 2^62): mass M (fixed point) exceeds p iff M > this
  vocab_cut* cuts = nullptr;           // (count); a listed row outside the logits gets vocab_cut::all()
};

// The fixed-point unit of the masses: 2^62.
inline constexpr double vocab_filter_mass_unit = 4611686018427387904.0;

// probability * 2^62, truncated; 0 for 0 and NaN. Probabilities are at most 1.
UNMASK_HOST_DEVICE std::uint64_t filter_mass(float probability) {
  return probability > 0.0f ? std::uint64_t(double(probability) * vocab_filter_mass_unit) : 0u;
}

// floor(p * 2^62) for p in (0, 1].
UNMASK_HOST_DEVICE std::uint64_t filter_mass_threshold(float top_p) {
  return std::uint64_t(double(top_p) * vocab_filter_mass_unit);
}

namespace detail {

// How a row's tokens map onto the 64-bit order numbers.
struct filter_geometry {
  std::int64_t vocab = 1;
  int index_bits = 0;  // bits of vocab - 1

  UNMASK_HOST_DEVICE int total_bits() const { return 32 + index_bits; }
  UNMASK_HOST_DEVICE std::uint64_t composite(std::uint32_t key, std::int32_t v) const {
    return (std::uint64_t(key) << index_bits) | std::uint64_t(vocab - 1 - v);
  }
  UNMASK_HOST_DEVICE std::uint32_t key_of(std::uint64_t c) const { return std::uint32_t(c >> index_bits); }
  UNMASK_HOST_DEVICE std::int32_t index_of(std::uint64_t c) const {
    const std::uint64_t low = c & ((std::uint64_t(1) << index_bits) - 1u);
    return std::int32_t(vocab - 1 - std::int64_t(low));
  }
  UNMASK_HOST_DEVICE vocab_cut cut_at(std::uint64_t c) const { return {key_of(c), index_of(c)}; }
};

UNMASK_HOST_DEVICE filter_geometry filter_geometry_of(std::int64_t vocab) {
  filter_geometry g;
  g.vocab = vocab;
  while ((std::int64_t(1) << g.index_bits) < vocab) ++g.index_bits;
  return g;
}

// One token as the filter sees it: its order number and its scaled logit.
struct filter_element {
  std::uint64_t composite;
  float scaled;
};

UNMASK_HOST_DEVICE filter_element filter_element_of(float logit, std::int64_t v, float inverse_temperature,
                                                    const filter_geometry& g) {
  const float s = mul_rn(logit, inverse_temperature);
  return {g.composite(selection_order_bits(s), std::int32_t(v)), s};
}

// The state of one radix select: the order numbers' top bits found so far
// (prefix; the bits below bits_left are 0), how many tokens come before every
// token matching them (count_above, with their mass), and how many match.
// The target is a 1-based rank, or a fixed-point mass: the token at which the
// mass of the tokens up to and including it first exceeds the target.
struct radix_select {
  bool by_mass = false;
  bool found = true;  // false: the whole row's mass does not exceed the target
  int index_bits = 0;
  int bits_left = 0;
  std::uint64_t target = 0;
  std::uint64_t prefix = 0;
  std::uint32_t count_above = 0;
  std::uint32_t count_in = 0;
  std::uint64_t mass_above = 0;

  UNMASK_HOST_DEVICE static radix_select start(const filter_geometry& g, bool by_mass, std::uint64_t target) {
    radix_select s;
    s.by_mass = by_mass;
    s.index_bits = g.index_bits;
    s.bits_left = g.total_bits();
    s.target = target;
    s.count_in = std::uint32_t(g.vocab);
    return s;
  }

  // Key bits go 8 at a time (32 = 4 x 8), then the index bits, the last digit narrower.
  UNMASK_HOST_DEVICE int digit_width() const {
    if (bits_left > index_bits) return vocab_filter_digit_bits;
    return bits_left < vocab_filter_digit_bits ? bits_left : vocab_filter_digit_bits;
  }
  UNMASK_HOST_DEVICE int digit_shift() const { return bits_left - digit_width(); }
  UNMASK_HOST_DEVICE bool matches(std::uint64_t c) const { return (c >> bits_left) == (prefix >> bits_left); }
  UNMASK_HOST_DEVICE unsigned digit(std::uint64_t c) const {
    return unsigned(c >> digit_shift()) & ((1u << digit_width()) - 1u);
  }

  // A pass's contribution of one element: false if it does not match the
  // prefix, else its digit and its mass (0 when selecting by rank).
  UNMASK_HOST_DEVICE bool entry(const filter_element& e, const vocab_stats& stats, unsigned& d,
                                std::uint64_t& mass) const {
    if (!matches(e.composite)) return false;
    d = digit(e.composite);
    mass = by_mass ? filter_mass(stats.probability(e.scaled)) : 0u;
    return true;
  }

  // Whether the target lies in a bin, given the matching tokens in the bins
  // of higher digits (before) and in the bin itself. Exactly one bin holds it
  // (by rank: when count_above < target <= count_above + count_in; by mass:
  // when the prefix's mass reaches past the target), none when, on the first
  // pass, the row's whole mass does not exceed a mass target.
  UNMASK_HOST_DEVICE bool holds_target(std::uint32_t before_count, std::uint64_t before_mass,
                                       std::uint32_t bin_count, std::uint64_t bin_mass) const {
    if (by_mass) {
      const std::uint64_t low = mass_above + before_mass;
      return low <= target && target < low + bin_mass;
    }
    const std::uint64_t low = std::uint64_t(count_above) + before_count;
    return low < target && target <= low + bin_count;
  }

  // Fixes the next digit.
  UNMASK_HOST_DEVICE void descend(unsigned d, std::uint32_t before_count, std::uint64_t before_mass,
                                  std::uint32_t bin_count) {
    const int shift = digit_shift();
    prefix |= std::uint64_t(d) << shift;
    bits_left = shift;
    count_above += before_count;
    mass_above += before_mass;
    count_in = bin_count;
  }

  // What a find() that met no matching token reports: never an order number
  // (those have at most 32 + 31 bits).
  static constexpr std::uint64_t no_match = ~std::uint64_t(0);

  // The one matching token is known: its order number is the whole prefix.
  // None matched (no_match: the row read differently than in the passes,
  // which a fixed row cannot do): no cut from this selection.
  UNMASK_HOST_DEVICE void settle(std::uint64_t c) {
    if (c == no_match) {
      found = false;
      return;
    }
    prefix = c;
    bits_left = 0;
  }
};

// Passes until the prefix fixes `stop_bits` low bits or less, or matches one
// token, which engine.find then reads. Engine: pass(select&, stats) runs one
// histogram pass and descends (or clears found), find(select&) settles.
#pragma nv_exec_check_disable
template <class Engine>
UNMASK_HOST_DEVICE void run_radix_select(Engine& engine, radix_select& sel, const vocab_stats& stats, int stop_bits) {
  while (sel.found && sel.bits_left > stop_bits && sel.count_in > 1) engine.pass(sel, stats);
  if (sel.found && sel.bits_left > stop_bits) engine.find(sel);
}

// One row's cut. Engine adds stats(): the vocab_stats (max_logit and
// sum_exp are what is read) of all the row's scaled logits.
#pragma nv_exec_check_disable
template <class Engine>
UNMASK_HOST_DEVICE vocab_cut filter_cut(Engine& engine, const vocab_filter_params& f) {
  const filter_geometry g = filter_geometry_of(f.vocab);
  std::uint32_t kept_by_p = std::uint32_t(f.vocab);  // K_p
  vocab_cut cut_p = vocab_cut::all();
  vocab_stats stats;
  if (f.top_p) {
    stats = engine.stats();
    radix_select sel = radix_select::start(g, true, f.top_p_threshold);
    run_radix_select(engine, sel, stats, 0);
    if (sel.found) {
      kept_by_p = sel.count_above + 1u;
      cut_p = g.cut_at(sel.prefix);
    }
  }
  if (f.top_k > 0 && std::uint32_t(f.top_k) < kept_by_p) {
    radix_select sel = radix_select::start(g, false, std::uint64_t(f.top_k));
    run_radix_select(engine, sel, stats, g.index_bits);
    // The k-th token's key and its ties: ranks count_above + 1 .. count_above + count_in.
    if (sel.found && sel.count_above + sel.count_in < kept_by_p) return {g.key_of(sel.prefix), INT32_MAX};
  }
  return cut_p;
}

// Thread `thread`'s statistics of the scaled logits of one row (the logits
// processor's choice reading of them).
template <int Block, class T, class Processor = no_logits_processor>
UNMASK_HOST_DEVICE vocab_stats filter_stats_thread(const T* row, std::int64_t vocab, int thread,
                                                   float inverse_temperature, const Processor& processor = Processor{},
                                                   const draw_site& site = draw_site{}) {
  vocab_stats mine;
  scan_range<Block, vocab_filter_unroll, false>(row, vocab, 0, thread, [&](float l, std::int64_t v) {
    const float c = processed_choice_logit(processor, l, std::int32_t(v), site);
    mine.push(mul_rn(c, inverse_temperature), std::int32_t(v));
  });
  return mine;
}

struct merge_vocab_stats {
  UNMASK_HOST_DEVICE vocab_stats operator()(const vocab_stats& a, const vocab_stats& b) const {
    vocab_stats r = a;
    r.merge(b);
    return r;
  }
};

// A histogram bin, or a sum of bins.
struct filter_bin {
  unsigned int count;
  unsigned long long mass;
};

struct add_filter_bins {
  UNMASK_HOST_DEVICE filter_bin operator()(const filter_bin& a, const filter_bin& b) const {
    return {a.count + b.count, a.mass + b.mass};
  }
};

template <int Block>
struct filter_shared {
  union {
    typename cub::BlockReduce<vocab_stats, Block>::TempStorage reduce;
    typename cub::BlockScan<filter_bin, Block>::TempStorage scan;
  } cub;
  unsigned int count[vocab_filter_histograms][vocab_filter_bins];
  unsigned long long mass[vocab_filter_histograms][vocab_filter_bins];
  float max_logit, sum_exp;  // the row's statistics, broadcast
  int digit;                 // the pass's decision, broadcast (-1: no bin holds the target)
  unsigned int before_count, bin_count;
  unsigned long long before_mass;
  unsigned long long found;  // the order number find() located
};

// Adds one token to a shared histogram. On sm_80+ the lanes of a warp with
// the same digit are merged first (the leader adds their count and mass).
UNMASK_DEVICE void filter_histogram_add(unsigned int* count, unsigned long long* mass, unsigned d, std::uint64_t m,
                                        bool by_mass) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned active = __activemask();
  const unsigned peers = __match_any_sync(active, d);
  const bool leader = (threadIdx.x & 31u) == unsigned(__ffs(int(peers)) - 1);
  if (by_mass) {  // uniform across the block
    // m <= 2^62: three slices of 21 bits, each summed over at most 32 lanes without overflow.
    const unsigned low = __reduce_add_sync(peers, unsigned(m & 0x1fffffu));
    const unsigned middle = __reduce_add_sync(peers, unsigned((m >> 21) & 0x1fffffu));
    const unsigned high = __reduce_add_sync(peers, unsigned(m >> 42));
    const unsigned long long sum = static_cast<unsigned long long>(low) +
                                   (static_cast<unsigned long long>(middle) << 21) +
                                   (static_cast<unsigned long long>(high) << 42);
    if (leader && sum != 0ull) atomicAdd(mass + d, sum);
  }
  if (leader) atomicAdd(count + d, unsigned(__popc(peers)));
#else
  atomicAdd(count + d, 1u);
  if (by_mass && m != 0u) atomicAdd(mass + d, static_cast<unsigned long long>(m));
#endif
}

// The block operations of filter_cut on the GPU; every thread of the block
// calls every method (each ends with the block's common result).
template <class T, int Block, class Processor = no_logits_processor>
struct block_filter_engine {
  const T* row;
  std::int64_t vocab;
  float inverse_temperature;
  filter_geometry geometry;
  filter_shared<Block>& shared;
  Processor processor;
  draw_site site;

  __device__ float choice(float l, std::int64_t v) const {
    return processed_choice_logit(processor, l, std::int32_t(v), site);
  }

  __device__ vocab_stats stats() {
    const vocab_stats mine =
        filter_stats_thread<Block>(row, vocab, int(threadIdx.x), inverse_temperature, processor, site);
    const vocab_stats all = cub::BlockReduce<vocab_stats, Block>(shared.cub.reduce).Reduce(mine, merge_vocab_stats{});
    if (threadIdx.x == 0) {
      shared.max_logit = all.max_logit;
      shared.sum_exp = all.sum_exp;
    }
    __syncthreads();
    vocab_stats out;
    out.max_logit = shared.max_logit;
    out.sum_exp = shared.sum_exp;
    return out;
  }

  __device__ void pass(radix_select& sel, const vocab_stats& stats) {
    const int t = int(threadIdx.x);
    unsigned int* counts = &shared.count[0][0];
    unsigned long long* masses = &shared.mass[0][0];
    for (int j = t; j < vocab_filter_histograms * vocab_filter_bins; j += Block) {
      counts[j] = 0u;
      masses[j] = 0ull;
    }
    __syncthreads();  // also: every thread has read the previous decision
    if (t == 0) shared.digit = -1;
    const int copy = (t / 32) % vocab_filter_histograms;
    unsigned int* count = shared.count[copy];
    unsigned long long* mass = shared.mass[copy];
    const radix_select s = sel;
    scan_range<Block, vocab_filter_unroll, false>(row, vocab, 0, t, [&](float l, std::int64_t v) {
      unsigned d;
      std::uint64_t m;
      if (s.entry(filter_element_of(choice(l, v), v, inverse_temperature, geometry), stats, d, m))
        filter_histogram_add(count, mass, d, m, s.by_mass);
    });
    __syncthreads();
    // Thread t takes digit bins - 1 - t: the scan runs from the highest digit down.
    filter_bin own{0u, 0ull};
    const unsigned d = unsigned(vocab_filter_bins - 1 - t);
    if (t < vocab_filter_bins) {
      for (int k = 0; k < vocab_filter_histograms; ++k) {
        own.count += shared.count[k][d];
        own.mass += shared.mass[k][d];
      }
    }
    filter_bin before;
    cub::BlockScan<filter_bin, Block>(shared.cub.scan).ExclusiveScan(own, before, filter_bin{0u, 0ull}, add_filter_bins{});
    if (t < vocab_filter_bins && s.holds_target(before.count, before.mass, own.count, own.mass)) {
      shared.digit = int(d);
      shared.before_count = before.count;
      shared.before_mass = before.mass;
      shared.bin_count = own.count;
    }
    __syncthreads();
    if (shared.digit < 0) sel.found = false;
    else sel.descend(unsigned(shared.digit), shared.before_count, shared.before_mass, shared.bin_count);
  }

  __device__ void find(radix_select& sel) {
    const radix_select s = sel;
    if (threadIdx.x == 0) shared.found = radix_select::no_match;  // what stays if no token matches
    __syncthreads();
    scan_range<Block, vocab_filter_unroll, false>(row, vocab, 0, int(threadIdx.x), [&](float l, std::int64_t v) {
      const filter_element e = filter_element_of(choice(l, v), v, inverse_temperature, geometry);
      if (s.matches(e.composite)) shared.found = e.composite;  // exactly one token matches
    });
    __syncthreads();
    sel.settle(shared.found);
    __syncthreads();
  }
};

}  // namespace detail

// Block i writes the cut of listed row i (of the processor's choice reading;
// sites: the listed rows' draw sites, or null).
template <class T, int Block, class Processor = no_logits_processor>
__global__ void __launch_bounds__(Block) vocab_filter_kernel(const T* logits, vocab_filter_params f,
                                                             Processor processor = {},
                                                             const draw_site* sites = nullptr) {
  static_assert(is_element_v<T>, "element type must be float, unmask::half or unmask::bfloat16");
  static_assert(Block % 32 == 0 && Block >= vocab_filter_bins, "whole warps, a thread per bin");
  __shared__ detail::filter_shared<Block> shared;
  const std::int32_t i = std::int32_t(blockIdx.x);
  const std::int32_t row = f.rows[i];
  vocab_cut cut = vocab_cut::all();
  if (row >= 0 && std::int64_t(row) < f.logit_rows) {  // uniform across the block
    detail::block_filter_engine<T, Block, Processor> engine{logits + std::int64_t(row) * f.vocab,
                                                            f.vocab,
                                                            f.inverse_temperature,
                                                            detail::filter_geometry_of(f.vocab),
                                                            shared,
                                                            processor,
                                                            sites != nullptr ? sites[i] : draw_site{}};
    cut = detail::filter_cut(engine, f);
  }
  if (threadIdx.x == 0) f.cuts[i] = cut;
}

// Launches the filter kernel for f.count >= 1 listed rows (no argument checks:
// vocab_pass makes them).
template <class T, class Processor = no_logits_processor>
cudaError_t launch_vocab_filter(const T* logits, const vocab_filter_params& f, cudaStream_t stream,
                                const Processor& processor = Processor{}, const draw_site* sites = nullptr) {
  vocab_filter_kernel<T, vocab_filter_block, Processor>
      <<<unsigned(f.count), vocab_filter_block, 0, stream>>>(logits, f, processor, sites);
  return launch_result();
}

}  // namespace unmask::cuda
