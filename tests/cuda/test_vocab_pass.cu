// The fused vocabulary pass (unmask/cuda/vocab_pass.hpp) against
// unmask::choose_token on float logits converted from the same T values.
//
// Host tests, which run everywhere: the Philox lanes and Gumbel noise the
// kernels draw equal counter_rng's bit for bit; scan_range visits every
// element exactly once, in increasing order per thread, at every misalignment;
// the split heuristic gives the documented plans; the launcher rejects bad
// arguments before touching the device; and the kernels' per-thread code, run
// thread by thread on the host over the single-block and split partitions and
// merged, gives choose_token's tokens exactly.
//
// Dream's filters (unmask/cuda/vocab_filter.hpp), on the host too: the filter
// kernel's radix select, run thread by thread with the CPU's own softmax
// statistics, keeps exactly the tokens detail::dream_filter keeps (rows with
// many ties, -inf, a dominant token, all equal; k in {1, 5, 50}, p in {0.5,
// 0.9, 0.95, the largest float below 1} and their combinations, temperatures
// 1 and 0.7; vocabularies from 1 to 152,064), within the documented
// number of passes; and the whole filtered pass emulated (filter, then either
// variant) gives choose_token's tokens and confidences, checked against the
// cut the emulation took (which must be dream_filter's, or differ only where
// the top-p mass before a token is within float rounding of p).
//
// Device tests (skipped without a GPU): vocabularies from 1 to 20,000 and the
// real 126,464 (LLaDA) and 152,064 (Qwen / Dream), float / half / bfloat16,
// aligned and misaligned rows, listed rows out of order and repeated, the mask
// id planted as the row's maximum, exact ties, greedy and Gumbel sampling,
// every confidence metric, each variant forced. Tokens must equal the CPU's;
// with sampling, a differing row is reported and tolerated only if it is a
// near tie (the two perturbed values within 1e-5 relative: the device's logf
// may differ from the host's in the last ulp). Confidences are compared with
// the metric evaluated in double on the same values: 1e-5 relative for
// float, 1e-2 for the 16-bit types (relative to the terms the metric is
// computed from, so margin and entropy may cancel); the random metric
// exactly. choose_token's own confidence is checked against the same double
// reference, more loosely, since it sums the vocabulary sequentially in float.
// Logits processors (LLaDA's bans, a user's site-dependent bias) and
// confidence metrics of one's own (token_rules): the per-thread code on the
// host and the pass on the device (filters included) give choose_token's
// choice with the same processor and metric.
// Filters on the GPU (vocabularies 1,000, 126,464 and 152,064, f32 and bf16,
// 1, 7 and 64 rows, T in {0, 0.7, 1}, top_k in {0, 1, 20} x top_p in {1,
// 0.9, 0.5}, the confidence on the sampling distribution or not, max_prob /
// margin / entropy, both variants): each row's cut is read back from the
// workspace and must be dream_filter's (or differ only within float rounding
// of p, as above); tokens must be choose_token's for that cut (a sampled one
// may differ only at a near tie) and confidences within 1e-5 relative.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "support/user_policies.hpp"
#include "unmask/cuda/vocab_filter.hpp"
#include "unmask/cuda/vocab_pass.hpp"
#include "unmask/policy/sampling.hpp"

namespace unmask {
namespace {

using cuda::vocab_pass_variant;
using test::device_array;

constexpr std::int32_t llada_mask_id = 126336;
constexpr confidence_metric all_metrics[] = {confidence_metric::max_prob, confidence_metric::margin,
                                             confidence_metric::neg_entropy, confidence_metric::random};

const char* variant_name(vocab_pass_variant v) {
  switch (v) {
    case vocab_pass_variant::single_block: return "single_block";
    case vocab_pass_variant::split: return "split";
    default: return "automatic";
  }
}

// ---- the inputs --------------------------------------------------------------

template <class T>
struct logits_case {
  std::int64_t vocab = 0, logit_rows = 0;
  std::vector<T> logits;           // (logit_rows, vocab)
  std::vector<float> wide;         // the same values as float: the CPU's input
  std::vector<std::int32_t> rows;  // listed rows
  std::vector<draw_site> sites;    // one per listed row
  std::int32_t excluded = -1;
};

template <class T>
logits_case<T> make_case(std::int64_t vocab, std::int64_t logit_rows, std::int32_t count, std::uint32_t seed) {
  logits_case<T> c;
  c.vocab = vocab;
  c.logit_rows = logit_rows;
  c.logits = test::random_elements<T>(std::size_t(logit_rows * vocab), seed, 3.0f);
  c.excluded = vocab > llada_mask_id ? llada_mask_id : vocab > 1 ? std::int32_t(vocab / 2) : -1;
  for (std::int64_t r = 0; r < logit_rows; ++r) {
    T* row = c.logits.data() + r * vocab;
    std::int64_t best = 0;
    for (std::int64_t v = 1; v < vocab; ++v)
      if (to_float(row[v]) > to_float(row[best])) best = v;
    if (r % 3 == 0 && c.excluded >= 0) {
      row[c.excluded] = cuda::from_float<T>(to_float(row[best]) + 4.0f);  // the mask would win if not excluded
    } else if (r % 3 == 1 && vocab >= 3) {
      std::int64_t other = (best + vocab / 3) % vocab;  // an exact tie for the maximum: the first index wins
      if (other == c.excluded) other = (other + 1) % vocab;
      if (other != best) row[other] = row[best];
    }
  }
  for (std::int32_t i = 0; i < count; ++i) {
    c.rows.push_back(std::int32_t((std::int64_t(i) * 5 + 3) % logit_rows));  // out of order, repeated
    c.sites.push_back({std::uint32_t(11 + 3 * i), 7u, std::uint32_t(40 + i)});
  }
  c.wide = test::widen(c.logits);
  return c;
}

struct sampling_case {
  const char* name;
  sampling_settings settings;
};

std::vector<sampling_case> sampling_cases() {
  sampling_settings greedy;
  sampling_settings gumbel;
  gumbel.temperature = 0.7f;
  sampling_settings tempered;
  tempered.temperature = 1.3f;
  tempered.confidence_on_sampling_distribution = true;
  sampling_settings greedy_tempered;  // at T = 0 the confidence stays on the raw logits
  greedy_tempered.confidence_on_sampling_distribution = true;
  return {{"greedy", greedy},
          {"gumbel T=0.7", gumbel},
          {"gumbel T=1.3, confidence on softmax(l/T)", tempered},
          {"greedy, confidence_on_sampling_distribution", greedy_tempered}};
}

// ---- the reference -----------------------------------------------------------

bool sampled(const sampling_settings& s) { return s.temperature > 0.0f; }

// The values the confidence is read from are l * stats_scale (float), as in choose_token.
float stats_scale(const sampling_settings& s) {
  return sampled(s) && s.confidence_on_sampling_distribution ? 1.0f / s.temperature : 1.0f;
}

// choose_token's key for token v: the logit, or the scaled logit plus its Gumbel noise.
float perturbed_key(const float* row, std::int32_t v, const sampling_settings& s, const counter_rng& rng,
                    const draw_site& site) {
  if (!sampled(s)) return row[v];
  const float scaled = row[v] * (1.0f / s.temperature);
  return scaled + rng.gumbel(random_purpose::token, site.sequence, site.step, site.position, std::uint32_t(v));
}

struct row_reference {
  token_choice cpu;  // choose_token with the max_prob metric
  // Statistics, in double, of the values the confidence is read from.
  double max = -INFINITY, second = -INFINITY, sum = 0, sum_delta = 0;
};

double reference_confidence(const row_reference& r, confidence_metric metric, float token_value, float uniform) {
  switch (metric) {
    case confidence_metric::margin: return (1.0 - std::exp(r.second - r.max)) / r.sum;
    case confidence_metric::neg_entropy: return r.sum_delta / r.sum - std::log(r.sum);
    case confidence_metric::random: return uniform;
    default: return std::exp(double(token_value) - r.max) / r.sum;
  }
}

// The magnitude of the terms a metric is computed from: the tolerance scale.
double confidence_scale(const row_reference& r, confidence_metric metric, double value) {
  switch (metric) {
    case confidence_metric::margin: return std::fabs(value) + 1.0 / r.sum;  // p(top1) = 1 / sum
    case confidence_metric::neg_entropy: return std::fabs(r.sum_delta / r.sum) + std::fabs(std::log(r.sum));
    default: return std::fabs(value);
  }
}

template <class T>
std::vector<row_reference> reference(const logits_case<T>& c, const sampling_settings& s, const counter_rng& rng) {
  const float scale = stats_scale(s);
  std::vector<row_reference> out(c.rows.size());
  for (std::size_t i = 0; i < c.rows.size(); ++i) {
    row_reference& r = out[i];
    const float* row = c.wide.data() + std::int64_t(c.rows[i]) * c.vocab;
    r.cpu = choose_token(row, c.vocab, s, confidence_metric::max_prob, c.excluded, rng, c.sites[i]);
    for (std::int64_t v = 0; v < c.vocab; ++v) {  // vocab_stats' max and runner-up (a tied max is its own runner-up)
      const double x = row[v] * scale;
      if (x > r.max) r.second = r.max, r.max = x;
      else if (x > r.second) r.second = x;
    }
    for (std::int64_t v = 0; v < c.vocab; ++v) {
      const double d = double(row[v] * scale) - r.max;
      r.sum += std::exp(d);
      r.sum_delta += std::exp(d) * d;
    }
    // The double reference computes what choose_token computes (which sums in float, in order).
    if (r.cpu.token >= 0) {
      const double want = reference_confidence(r, confidence_metric::max_prob, row[r.cpu.token] * scale, 0.0f);
      EXPECT_NEAR(r.cpu.confidence, want, 1e-3 * want) << "choose_token vs double, row " << i;
    }
  }
  return out;
}

// Compares one run's tokens and confidences with the reference. With
// exact_tokens every token must match; otherwise a differing sampled row is
// tolerated when it is a near tie, and the count is printed.
template <class T>
void compare_rows(const logits_case<T>& c, const sampling_settings& s, confidence_metric metric,
                  const counter_rng& rng, const std::vector<row_reference>& refs,
                  const std::vector<std::int32_t>& tokens, const std::vector<float>& confidence, bool exact_tokens) {
  const double rel = std::is_same_v<T, float> ? 1e-5 : 1e-2;
  const float scale = stats_scale(s);
  int differing = 0, unexplained = 0;
  for (std::size_t i = 0; i < c.rows.size(); ++i) {
    const float* row = c.wide.data() + std::int64_t(c.rows[i]) * c.vocab;
    const draw_site& site = c.sites[i];
    const std::int32_t token = tokens[i];
    ASSERT_TRUE(token >= 0 && token < c.vocab) << "row " << i << ": token " << token;
    EXPECT_NE(token, c.excluded) << "row " << i << " proposed the excluded token";
    if (token != refs[i].cpu.token) {
      ++differing;
      const float got_key = perturbed_key(row, token, s, rng, site);
      const float want_key = perturbed_key(row, refs[i].cpu.token, s, rng, site);
      const bool near_tie = !exact_tokens && sampled(s) &&
                            std::fabs(got_key - want_key) <= 1e-5f * std::max(1.0f, std::fabs(want_key));
      if (!near_tie) {
        ++unexplained;
        ADD_FAILURE() << "row " << i << ": token " << token << " (key " << got_key << "), CPU "
                      << refs[i].cpu.token << " (key " << want_key << ")";
      }
    }
    ASSERT_FALSE(std::isnan(confidence[i])) << "row " << i;
    const float uniform = rng.uniform(random_purpose::confidence, site.sequence, site.step, site.position, 0);
    if (metric == confidence_metric::random) {
      EXPECT_EQ(confidence[i], uniform) << "row " << i;
      continue;
    }
    const double want = reference_confidence(refs[i], metric, row[token] * scale, uniform);
    EXPECT_NEAR(confidence[i], want, rel * confidence_scale(refs[i], metric, want))
        << "row " << i << ", " << to_string(metric);
  }
  if (differing > 0)
    std::printf("[   INFO   ] %d of %zu rows chose another token than the CPU, %d of them not near ties\n", differing,
                c.rows.size(), unexplained);
}

// ---- host tests -------------------------------------------------------------

TEST(CudaVocabPassHost, NoiseMatchesCounterRng) {
  const counter_rng rng{0x0123456789abcdefull};
  const draw_site sites[] = {{0, 0, 0}, {3, 9, 127}, {0xffffffffu, 1, 5}};
  std::vector<std::uint32_t> indices;
  for (std::uint32_t v = 0; v < 4099; ++v) indices.push_back(v);
  for (std::uint32_t v : {126463u, 126336u, 152063u, 2147483647u, 5u}) indices.push_back(v);
  for (const draw_site& site : sites) {
    cuda::token_noise noise{rng, site};
    for (std::uint32_t v : indices) {
      std::uint32_t lanes[4];
      for (random_purpose purpose : {random_purpose::token, random_purpose::confidence}) {
        cuda::counter_block(rng, purpose, site, v >> 2, lanes);
        ASSERT_EQ(lanes[v & 3u], rng.bits(purpose, site.sequence, site.step, site.position, v)) << v;
      }
      ASSERT_EQ(noise(v), rng.gumbel(random_purpose::token, site.sequence, site.step, site.position, v)) << v;
    }
  }
}

template <int Block, int Unroll, class T>
void check_scan(std::int64_t n, int offset) {
  SCOPED_TRACE(std::string(test::type_name<T>()) + " n=" + std::to_string(n) + " offset=" + std::to_string(offset) +
               " block=" + std::to_string(Block));
  std::vector<T> data = test::random_elements<T>(std::size_t(n + 16), 7, 1.0f);
  const T* p = data.data() + offset;
  std::vector<int> seen(std::size_t(n), 0);
  constexpr std::int64_t first = 1000;
  int failures = 0;
  for (int t = 0; t < Block; ++t) {
    std::int64_t last = -1;
    cuda::scan_range<Block, Unroll, true>(p, n, first, t, [&](float v, std::int64_t index) {
      const std::int64_t i = index - first;
      if (i < 0 || i >= n || index <= last || v != to_float(p[i])) {
        if (++failures < 10) ADD_FAILURE() << "thread " << t << " visited " << index << " after " << last;
        return;
      }
      last = index;
      ++seen[std::size_t(i)];
    });
  }
  for (std::int64_t i = 0; i < n; ++i)
    if (seen[std::size_t(i)] != 1 && ++failures < 10)
      ADD_FAILURE() << "element " << i << " seen " << seen[std::size_t(i)];
}

TEST(CudaVocabPassHost, ScanRangeVisitsEveryElementOnceInOrder) {
  for (std::int64_t n : {0, 1, 2, 3, 7, 8, 9, 100, 1000, 4097, 20001}) {
    for (int offset = 0; offset < 8; ++offset) {
      check_scan<256, 4, float>(n, offset);
      check_scan<256, 4, half>(n, offset);
      check_scan<256, 4, bfloat16>(n, offset);
      check_scan<32, 2, bfloat16>(n, offset);
    }
  }
}

TEST(CudaVocabPassHost, PlanFollowsTheDocumentedHeuristic) {
  struct expectation {
    std::int64_t count, vocab;
    vocab_pass_variant variant;
    bool split;
    std::int64_t splits, chunk;
  };
  const vocab_pass_variant a = vocab_pass_variant::automatic;
  const expectation cases[] = {
      {1, 126464, a, true, 15, 8448},   {17, 126464, a, true, 15, 8448}, {32, 126464, a, true, 8, 15808},
      {64, 126464, a, true, 4, 31616},  {128, 126464, a, true, 2, 63232}, {129, 126464, a, false, 1, 126464},
      {1, 152064, a, true, 18, 8448},   {1, 16383, a, false, 1, 16383},   {1, 16384, a, true, 2, 8192},
      {4, 1000, a, false, 1, 1000},     {1, 126464, vocab_pass_variant::single_block, false, 1, 126464},
      {1000, 126464, vocab_pass_variant::split, true, 15, 8448},
      {1, 1000, vocab_pass_variant::split, true, 2, 512},
      {1, 7, vocab_pass_variant::split, true, 1, 64},
  };
  for (const expectation& e : cases) {
    SCOPED_TRACE(std::to_string(e.count) + " rows, vocab " + std::to_string(e.vocab) + ", " + variant_name(e.variant));
    const cuda::vocab_pass_plan plan = cuda::plan_vocab_pass(e.count, e.vocab, e.variant);
    EXPECT_EQ(plan.split, e.split);
    EXPECT_EQ(plan.splits, e.splits);
    EXPECT_EQ(plan.chunk, e.chunk);
    EXPECT_EQ(cuda::vocab_pass_workspace_bytes(e.count, e.vocab, e.variant),
              e.split ? std::size_t(e.count * e.splits) * sizeof(cuda::vocab_partial) : 0u);
  }
  for (std::int64_t count : {1, 2, 5, 31, 100, 128, 129, 4096}) {
    for (std::int64_t vocab : {1, 63, 64, 65, 8192, 50000, 126464, 152064, 1 << 22}) {
      for (vocab_pass_variant v : {a, vocab_pass_variant::single_block, vocab_pass_variant::split}) {
        const cuda::vocab_pass_plan plan = cuda::plan_vocab_pass(count, vocab, v);
        EXPECT_TRUE(plan.splits >= 1 && plan.splits <= cuda::vocab_pass_max_splits);
        EXPECT_LT((plan.splits - 1) * plan.chunk, vocab);  // no empty chunk
        EXPECT_GE(plan.splits * plan.chunk, vocab);         // every token in a chunk
        if (plan.split) EXPECT_EQ(plan.chunk % cuda::vocab_pass_split_granule, 0);
        if (!plan.split) EXPECT_EQ(plan.chunk, vocab);
      }
    }
  }
}

TEST(CudaVocabPassHost, LauncherChecksItsArgumentsBeforeTouchingTheDevice) {
  // Host memory stands in for device memory: every call below must return before any launch.
  float logits[64] = {};
  std::int32_t rows[2] = {0, 1}, tokens[2];
  float confidence[2];
  draw_site sites[2];
  alignas(16) unsigned char workspace[4096];
  const auto call = [&](std::int64_t vocab, std::int32_t count, const cuda::vocab_pass_options& o,
                        const draw_site* s = nullptr, void* ws = nullptr, std::size_t ws_bytes = 0,
                        const float* l = nullptr) {
    return cuda::vocab_pass(l != nullptr ? l : logits, 2, vocab, rows, count, s, o, tokens, confidence, ws, ws_bytes,
                            nullptr);
  };
  cuda::vocab_pass_options o;
  EXPECT_EQ(call(0, 2, o), cudaErrorInvalidValue);
  EXPECT_EQ(call(std::int64_t(1) << 31, 2, o), cudaErrorInvalidValue);
  EXPECT_EQ(call(32, -1, o), cudaErrorInvalidValue);
  EXPECT_EQ(call(32, 0, o), cudaSuccess);  // nothing to do
  EXPECT_EQ(cuda::vocab_pass(logits, -1, 32, rows, 2, sites, o, tokens, confidence, nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::vocab_pass<float>(nullptr, 2, 32, rows, 2, sites, o, tokens, confidence, nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::vocab_pass(logits, 2, 32, nullptr, 2, sites, o, tokens, confidence, nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::vocab_pass(logits, 2, 32, rows, 2, sites, o, nullptr, confidence, nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::vocab_pass(logits, 2, 32, rows, 2, sites, o, tokens, nullptr, nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  o.sampling.top_k = -1;
  EXPECT_EQ(call(32, 2, o, sites), cudaErrorInvalidValue);
  o.sampling.top_k = 0;
  for (float p : {0.0f, -0.5f, 1.5f, NAN}) {
    o.sampling.top_p = p;
    EXPECT_EQ(call(32, 2, o, sites), cudaErrorInvalidValue) << p;
  }
  o.sampling.top_p = 1.0f;
  o.sampling.temperature = -1.0f;
  EXPECT_EQ(call(32, 2, o, sites), cudaErrorInvalidValue);
  o.sampling.temperature = INFINITY;
  EXPECT_EQ(call(32, 2, o, sites), cudaErrorInvalidValue);
  o.sampling.temperature = 0.5f;
  EXPECT_EQ(call(32, 2, o), cudaErrorInvalidValue);  // sampling needs draw sites
  o.sampling.temperature = 0.0f;
  o.metric = confidence_metric::random;
  EXPECT_EQ(call(32, 2, o), cudaErrorInvalidValue);  // so does the random metric
  o.metric = static_cast<confidence_metric>(9);
  EXPECT_EQ(call(32, 2, o, sites), cudaErrorInvalidValue);
  o.metric = confidence_metric::max_prob;
  o.variant = vocab_pass_variant::split;
  const std::size_t need = cuda::vocab_pass_workspace_bytes(2, 32, o.variant);
  ASSERT_GT(need, 0u);
  ASSERT_LE(need + 1, sizeof workspace);
  EXPECT_EQ(call(32, 2, o, sites), cudaErrorInvalidValue);                            // no workspace
  EXPECT_EQ(call(32, 2, o, sites, workspace, need - 1), cudaErrorInvalidValue);       // too small
  EXPECT_EQ(call(32, 2, o, sites, workspace + 4, need), cudaErrorInvalidValue);       // misaligned
}

TEST(CudaVocabPassHost, FiltersNeedTheirCutsInTheWorkspace) {
  float logits[64] = {};
  std::int32_t rows[2] = {0, 1}, tokens[2];
  float confidence[2];
  draw_site sites[2];
  alignas(16) unsigned char workspace[4096];
  cuda::vocab_pass_params p;
  cuda::vocab_pass_plan plan;
  cuda::vocab_filter_params f;
  const auto prepare = [&](const cuda::vocab_pass_options& o, void* ws, std::size_t bytes) {
    return cuda::prepare_vocab_pass(logits, 2, 32, rows, 2, sites, o, tokens, confidence, ws, bytes, p, plan, f);
  };
  for (vocab_pass_variant variant : {vocab_pass_variant::single_block, vocab_pass_variant::split}) {
    SCOPED_TRACE(variant_name(variant));
    const std::size_t plain = cuda::vocab_pass_workspace_bytes(2, 32, variant);
    const std::size_t offset = cuda::vocab_pass_cuts_offset(2, 32, variant);
    const std::size_t need = cuda::vocab_pass_workspace_bytes(2, 32, variant, /*filtered=*/true);
    EXPECT_EQ(offset % 16, 0u);
    EXPECT_GE(offset, plain);
    EXPECT_EQ(need, offset + 2 * sizeof(cuda::vocab_cut));
    EXPECT_EQ(cuda::vocab_pass_workspace_bytes(0, 32, variant, true), 0u);
    cuda::vocab_pass_options o;
    o.variant = variant;
    o.sampling.temperature = 0.7f;
    o.sampling.top_k = 3;
    o.sampling.top_p = 0.9f;
    EXPECT_EQ(prepare(o, nullptr, 0), cudaErrorInvalidValue);
    EXPECT_EQ(prepare(o, workspace, need - 1), cudaErrorInvalidValue);
    EXPECT_EQ(prepare(o, workspace + 8, need), cudaErrorInvalidValue);
    ASSERT_EQ(prepare(o, workspace, need), cudaSuccess);
    EXPECT_EQ(static_cast<void*>(f.cuts), static_cast<void*>(workspace + offset));
    EXPECT_EQ(f.rows, rows);
    EXPECT_EQ(f.count, 2);
    EXPECT_EQ(f.vocab, 32);
    EXPECT_EQ(f.logit_rows, 2);
    EXPECT_EQ(f.top_k, 3);
    EXPECT_TRUE(f.top_p);
    EXPECT_EQ(f.top_p_threshold, cuda::filter_mass_threshold(0.9f));
    EXPECT_EQ(f.inverse_temperature, 1.0f / 0.7f);
    EXPECT_EQ(p.stats_scale, 1.0f);
    // At temperature 0 choose_token ignores the filters unless the confidence is on the sampling distribution.
    o.sampling.temperature = 0.0f;
    ASSERT_EQ(prepare(o, variant == vocab_pass_variant::split ? workspace : nullptr, plain), cudaSuccess);
    EXPECT_EQ(f.cuts, nullptr);
    o.sampling.confidence_on_sampling_distribution = true;
    EXPECT_EQ(prepare(o, workspace, need - 1), cudaErrorInvalidValue);
    ASSERT_EQ(prepare(o, workspace, need), cudaSuccess);
    EXPECT_NE(f.cuts, nullptr);
    EXPECT_EQ(f.inverse_temperature, 1.0f);
    o.sampling.top_k = 0;
    o.sampling.top_p = 1.0f;  // no filters: the plain workspace
    ASSERT_EQ(prepare(o, variant == vocab_pass_variant::split ? workspace : nullptr, plain), cudaSuccess);
    EXPECT_EQ(f.cuts, nullptr);
  }
}

// Runs the kernels' per-thread code on the host, thread after thread, and
// merges as the kernels do (in thread order instead of cub's tree).
// Filtered (filter.cuts non-null): within the cuts already there, the
// statistics of the kept tokens only with stats_on_kept.
template <class T, class Processor = no_logits_processor>
void emulate_vocab_pass(const T* logits, const cuda::vocab_pass_params& p, const cuda::vocab_pass_plan& plan,
                        bool is_sampled, const cuda::vocab_filter_params& filter = {}, bool stats_on_kept = false,
                        const Processor& processor = {}) {
  const bool filtered = filter.cuts != nullptr;
  constexpr int block = cuda::vocab_pass_block;
  for (std::int32_t i = 0; i < p.count; ++i) {
    const std::int32_t row = p.rows[i];
    const bool valid = cuda::detail::row_valid(p, row);
    cuda::vocab_partial all;
    for (std::int64_t s = 0; valid && s < plan.splits; ++s) {
      const std::int64_t begin = s * plan.chunk, end = std::min(p.vocab, begin + plan.chunk);
      const T* base = logits + std::int64_t(row) * p.vocab;
      cuda::vocab_partial chunk;
      for (int t = 0; t < block; ++t) {
        const draw_site site = cuda::detail::site_of(p, i);
        if (filtered) {
          const cuda::vocab_cut cut = filter.cuts[i];
          chunk.merge(is_sampled ? cuda::detail::scan_vocab<block, true, true>(base, begin, end, t, p, site, cut,
                                                                               stats_on_kept, processor)
                                 : cuda::detail::scan_vocab<block, false, true>(base, begin, end, t, p, site, cut,
                                                                                stats_on_kept, processor));
        } else {
          chunk.merge(is_sampled ? cuda::detail::scan_vocab<block, true>(base, begin, end, t, p, site,
                                                                        cuda::vocab_cut::all(), false, processor)
                                 : cuda::detail::scan_vocab<block, false>(base, begin, end, t, p, site,
                                                                         cuda::vocab_cut::all(), false, processor));
        }
      }
      all.merge(chunk);
    }
    cuda::detail::finish_row(all, valid, p, i, processor);
  }
}

template <class T>
void check_emulation(std::int64_t vocab, std::int64_t logit_rows, std::int32_t count, std::uint32_t seed) {
  const logits_case<T> c = make_case<T>(vocab, logit_rows, count, seed);
  const counter_rng rng{0x5eedull + seed};
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(count));
  std::vector<float> confidence(static_cast<std::size_t>(count));
  std::vector<unsigned char> workspace(cuda::vocab_pass_workspace_bytes(count, vocab, vocab_pass_variant::split) + 16);
  void* aligned_workspace = workspace.data() + (16 - reinterpret_cast<std::uintptr_t>(workspace.data()) % 16) % 16;
  for (const sampling_case& sc : sampling_cases()) {
    const std::vector<row_reference> refs = reference(c, sc.settings, rng);
    for (confidence_metric metric : all_metrics) {
      for (vocab_pass_variant variant : {vocab_pass_variant::single_block, vocab_pass_variant::split}) {
        SCOPED_TRACE(std::string(test::type_name<T>()) + " vocab " + std::to_string(vocab) + ", " + sc.name + ", " +
                     to_string(metric) + ", " + variant_name(variant));
        const cuda::vocab_pass_options o{sc.settings, metric, c.excluded, rng, variant};
        cuda::vocab_pass_params p;
        cuda::vocab_pass_plan plan;
        cuda::vocab_filter_params filter;
        ASSERT_EQ(cuda::prepare_vocab_pass(c.logits.data(), logit_rows, vocab, c.rows.data(), count, c.sites.data(), o,
                                           tokens.data(), confidence.data(), aligned_workspace,
                                           workspace.size() - 16, p, plan, filter),
                  cudaSuccess);
        ASSERT_EQ(filter.cuts, nullptr);
        std::fill(tokens.begin(), tokens.end(), -1);
        std::fill(confidence.begin(), confidence.end(), NAN);
        emulate_vocab_pass(c.logits.data(), p, plan, sampled(sc.settings));
        compare_rows(c, sc.settings, metric, rng, refs, tokens, confidence, /*exact_tokens=*/true);
      }
    }
  }
}

TEST(CudaVocabPassHost, ThreadByThreadEmulationMatchesChooseToken) {
  for (std::int64_t vocab : {1, 7, 1001, 20000}) {
    check_emulation<float>(vocab, 4, 5, 1);
    check_emulation<half>(vocab, 4, 5, 2);
    check_emulation<bfloat16>(vocab, 4, 5, 3);
  }
  check_emulation<float>(126464, 3, 3, 4);
}

// ---- filters: the reference ---------------------------------------------------

float filter_inverse_temperature(const sampling_settings& s) { return sampled(s) ? 1.0f / s.temperature : 1.0f; }

// One row under the filters' scaling: its order (dream_filter's stable sort)
// and dream_filter's masses along it.
struct filter_basis {
  std::vector<float> scaled;        // l * (1 / T), rounded as choose_token rounds it
  std::vector<std::int32_t> order;  // by scaled descending, ties by index
  std::vector<double> mass;         // mass[K]: the mass of the first K, as dream_filter accumulates it
  double slack = 0;                 // how far another normalisation may put the masses from these
};

filter_basis make_basis(const float* row, std::int64_t vocab, float inverse_t) {
  filter_basis b;
  b.scaled.resize(std::size_t(vocab));
  for (std::int64_t v = 0; v < vocab; ++v) b.scaled[std::size_t(v)] = row[v] * inverse_t;
  b.order.resize(std::size_t(vocab));
  std::iota(b.order.begin(), b.order.end(), 0);
  std::stable_sort(b.order.begin(), b.order.end(),
                   [&](std::int32_t x, std::int32_t y) { return b.scaled[std::size_t(x)] > b.scaled[std::size_t(y)]; });
  vocab_stats all;
  for (std::int64_t v = 0; v < vocab; ++v) all.push(b.scaled[std::size_t(v)], std::int32_t(v));
  b.mass.assign(std::size_t(vocab) + 1, 0.0);
  for (std::size_t i = 0; i < b.order.size(); ++i)
    b.mass[i + 1] = b.mass[i] + all.probability(b.scaled[std::size_t(b.order[i])]);
  // The CPU's float normalisation against an exact one; the GPU's (a tree sum) is closer still.
  double exact = 0;
  for (float x : b.scaled) exact += std::exp(double(x) - double(all.max_logit));
  b.slack = 1e-5 + 2.0 * std::fabs(double(all.sum_exp) / exact - 1.0);
  return b;
}

std::int64_t vocab_of(const filter_basis& b) { return std::int64_t(b.order.size()); }

// dream_filter's top-k after a top-p that kept the first kept_by_p tokens: how many stay.
std::int64_t after_top_k(const filter_basis& b, const sampling_settings& s, std::int64_t kept_by_p) {
  if (s.top_k <= 0 || s.top_k >= kept_by_p) return kept_by_p;
  const float kth = b.scaled[std::size_t(b.order[std::size_t(s.top_k - 1)])];
  std::int64_t kept = s.top_k;
  while (kept < kept_by_p && b.scaled[std::size_t(b.order[std::size_t(kept)])] >= kth) ++kept;
  return kept;
}

// The first K >= 1 whose mass exceeds `p`, or the vocabulary.
std::int64_t first_exceeding(const filter_basis& b, double p) {
  const auto it = std::upper_bound(b.mass.begin() + 1, b.mass.end(), p);
  return it == b.mass.end() ? vocab_of(b) : std::int64_t(it - b.mass.begin());
}

// How many tokens (a prefix of the order) dream_filter keeps.
std::int64_t dream_kept(const filter_basis& b, const sampling_settings& s) {
  if (!cuda::vocab_pass_filters(s)) return vocab_of(b);
  const std::int64_t kept_by_p = s.top_p < 1.0f ? first_exceeding(b, double(s.top_p)) : vocab_of(b);
  return after_top_k(b, s, kept_by_p);
}

// Whether keeping `kept` tokens is dream_filter's answer for masses within the basis' slack of its own.
bool admissible_kept(const filter_basis& b, const sampling_settings& s, std::int64_t kept) {
  if (!cuda::vocab_pass_filters(s) || s.top_p >= 1.0f) return kept == dream_kept(b, s);
  const std::int64_t low = first_exceeding(b, double(s.top_p) - b.slack);
  const std::int64_t high = first_exceeding(b, double(s.top_p) + b.slack);
  for (std::int64_t k = low; k <= high; ++k)
    if (after_top_k(b, s, k) == kept) return true;
  return false;
}

// How many tokens a cut keeps (they must be a prefix of the order).
std::int64_t kept_by_cut(const filter_basis& b, const cuda::vocab_cut& cut) {
  const auto it = std::partition_point(b.order.begin(), b.order.end(), [&](std::int32_t v) {
    return cut.keeps(cuda::selection_order_bits(b.scaled[std::size_t(v)]), v);
  });
  return std::int64_t(it - b.order.begin());
}

// What choose_token returns when the first `kept` tokens of the order are kept.
struct filtered_expectation {
  std::int32_t token = -1;
  bool on_kept = false;   // confidence on the kept, scaled logits; else on all the raw logits
  row_reference stats;    // of the confidence's distribution, in double (stats.cpu unused)
};

filtered_expectation expect_filtered(const filter_basis& b, std::int64_t kept,
                                     const sampling_settings& s, std::int32_t excluded, const counter_rng& rng,
                                     const draw_site& site, const row_reference& raw) {
  filtered_expectation e;
  float best = -INFINITY;
  for (std::int64_t j = 0; j < kept; ++j) {
    const std::int32_t v = b.order[std::size_t(j)];
    if (v == excluded) continue;
    const float scaled = b.scaled[std::size_t(v)];
    const float key = sampled(s) ? scaled + rng.gumbel(random_purpose::token, site.sequence, site.step,
                                                        site.position, std::uint32_t(v))
                                 : scaled;
    if (key > best || (key == best && e.token >= 0 && v < e.token)) best = key, e.token = v;
  }
  e.on_kept = cuda::vocab_pass_filters(s) && s.confidence_on_sampling_distribution;
  if (!e.on_kept) {
    e.stats = raw;
    return e;
  }
  row_reference& r = e.stats;
  r.max = b.scaled[std::size_t(b.order[0])];
  r.second = kept >= 2 ? double(b.scaled[std::size_t(b.order[1])]) : -INFINITY;
  for (std::int64_t j = 0; j < kept; ++j) {
    const double d = double(b.scaled[std::size_t(b.order[std::size_t(j)])]) - r.max;
    r.sum += std::exp(d);
    r.sum_delta += std::exp(d) * d;
  }
  return e;
}

// Statistics, in double, of a row's raw logits.
row_reference raw_statistics(const float* row, std::int64_t vocab) {
  row_reference r;
  for (std::int64_t v = 0; v < vocab; ++v) {
    const double x = row[v];
    if (x > r.max) r.second = r.max, r.max = x;
    else if (x > r.second) r.second = x;
  }
  for (std::int64_t v = 0; v < vocab; ++v) {
    const double d = double(row[v]) - r.max;
    r.sum += std::exp(d);
    r.sum_delta += std::exp(d) * d;
  }
  return r;
}

// Per listed row, for one sampling setting: dream_filter's kept count and what choose_token returns.
struct filter_reference {
  std::int64_t kept = 0;
  filtered_expectation expect;
};

// The reference of the first `count` listed rows; on the first `cpu_rows`
// it is checked against choose_token itself (which throws where the filters
// keep only the excluded token).
template <class T>
std::vector<filter_reference> filter_references(const logits_case<T>& c, const std::vector<filter_basis>& bases,
                                                const std::vector<row_reference>& raw, const sampling_settings& s,
                                                const counter_rng& rng, std::int32_t count, std::int32_t cpu_rows) {
  std::vector<filter_reference> out(static_cast<std::size_t>(count));
  for (std::int32_t i = 0; i < count; ++i) {
    const std::int32_t row_index = c.rows[std::size_t(i)];
    const float* row = c.wide.data() + std::int64_t(row_index) * c.vocab;
    const filter_basis& b = bases[std::size_t(row_index)];
    filter_reference& r = out[std::size_t(i)];
    r.kept = dream_kept(b, s);
    r.expect = expect_filtered(b, r.kept, s, c.excluded, rng, c.sites[std::size_t(i)], raw[std::size_t(i)]);
    if (i >= cpu_rows) continue;
    if (r.expect.token < 0) {
      EXPECT_THROW(choose_token(row, c.vocab, s, confidence_metric::max_prob, c.excluded, rng, c.sites[std::size_t(i)]),
                   argument_error)
          << "row " << i;
      continue;
    }
    const token_choice cpu =
        choose_token(row, c.vocab, s, confidence_metric::max_prob, c.excluded, rng, c.sites[std::size_t(i)]);
    EXPECT_EQ(cpu.token, r.expect.token) << "reference against choose_token, row " << i;
    const float value = r.expect.on_kept ? b.scaled[std::size_t(cpu.token)] : row[cpu.token];
    const double want = reference_confidence(r.expect.stats, confidence_metric::max_prob, value, 0.0f);
    EXPECT_NEAR(cpu.confidence, want, 1e-3 * want) << "choose_token vs double, row " << i;
  }
  return out;
}

// Checks one run of `count` rows: the cut each row took (null: the pass was
// not filtered), its token and confidence. Returns the rows whose cut
// differs from dream_filter's (within the slack).
template <class T>
int compare_filtered(const logits_case<T>& c, const std::vector<filter_basis>& bases,
                     const std::vector<row_reference>& raw, const sampling_settings& s, confidence_metric metric,
                     const counter_rng& rng, const std::vector<filter_reference>& refs, std::int32_t count,
                     const std::int32_t* tokens, const float* confidence, const cuda::vocab_cut* cuts,
                     bool exact_tokens, int& near_ties) {
  int differing = 0;
  for (std::int32_t i = 0; i < count; ++i) {
    const std::int32_t row_index = c.rows[std::size_t(i)];
    const float* row = c.wide.data() + std::int64_t(row_index) * c.vocab;
    const filter_basis& b = bases[std::size_t(row_index)];
    const draw_site& site = c.sites[std::size_t(i)];
    const std::int64_t kept = cuts != nullptr ? kept_by_cut(b, cuts[i]) : c.vocab;
    filtered_expectation fresh;
    const filtered_expectation* e = &refs[std::size_t(i)].expect;
    if (kept != refs[std::size_t(i)].kept) {
      ++differing;
      EXPECT_TRUE(admissible_kept(b, s, kept))
          << "row " << i << ": the cut keeps " << kept << " tokens, dream_filter " << refs[std::size_t(i)].kept;
      fresh = expect_filtered(b, kept, s, c.excluded, rng, site, raw[std::size_t(i)]);
      e = &fresh;
    }
    const std::int32_t token = tokens[i];
    if (e->token < 0) {
      EXPECT_EQ(token, -1) << "row " << i << ": the filters keep only the excluded token";
      continue;
    }
    if (token != e->token) {
      const bool allowed = token >= 0 && token < c.vocab && token != c.excluded &&
                           std::find(b.order.begin(), b.order.begin() + kept, token) != b.order.begin() + kept;
      const bool near_tie =
          !exact_tokens && sampled(s) && allowed &&
          std::fabs(perturbed_key(row, token, s, rng, site) - perturbed_key(row, e->token, s, rng, site)) <=
              1e-5f * std::max(1.0f, std::fabs(perturbed_key(row, e->token, s, rng, site)));
      if (!near_tie) {
        ADD_FAILURE() << "row " << i << ": token " << token << ", expected " << e->token;
        continue;
      }
      ++near_ties;
    }
    const float uniform = rng.uniform(random_purpose::confidence, site.sequence, site.step, site.position, 0);
    if (metric == confidence_metric::random) {
      EXPECT_EQ(confidence[i], uniform) << "row " << i;
      continue;
    }
    const float value = e->on_kept ? b.scaled[std::size_t(token)] : row[token];
    const double want = reference_confidence(e->stats, metric, value, uniform);
    EXPECT_NEAR(confidence[i], want, 1e-5 * confidence_scale(e->stats, metric, want))
        << "row " << i << ", " << to_string(metric);
  }
  return differing;
}

// The settings the filter tests walk: top_k in {0, 1, 20} x top_p in {1, 0.9, 0.5}, filters on.
std::vector<sampling_settings> filter_settings(float temperature, bool on_kept,
                                               std::initializer_list<std::int32_t> ks = {0, 1, 20},
                                               std::initializer_list<float> ps = {1.0f, 0.9f, 0.5f}) {
  std::vector<sampling_settings> out;
  for (std::int32_t k : ks) {
    for (float p : ps) {
      sampling_settings s;
      s.temperature = temperature;
      s.top_k = k;
      s.top_p = p;
      s.confidence_on_sampling_distribution = on_kept;
      if (s.filters()) out.push_back(s);
    }
  }
  return out;
}

std::string describe(const sampling_settings& s) {
  return "T=" + std::to_string(s.temperature) + " top_k=" + std::to_string(s.top_k) +
         " top_p=" + std::to_string(s.top_p) + (s.confidence_on_sampling_distribution ? " on kept" : " raw");
}

// ---- filters: host tests --------------------------------------------------------

// filter_cut's block operations, thread by thread on the host.
template <class T>
struct host_filter_engine {
  const T* row;
  std::int64_t vocab;
  float inverse_temperature;
  cuda::detail::filter_geometry geometry;
  const vocab_stats* given = nullptr;  // the CPU's statistics instead of the block's
  int passes = 0;                      // reads of the row

  static constexpr int block = cuda::vocab_filter_block;
  static constexpr int unroll = cuda::vocab_filter_unroll;

  vocab_stats stats() {
    if (given != nullptr) return *given;
    ++passes;
    vocab_stats all;
    for (int t = 0; t < block; ++t)
      all.merge(cuda::detail::filter_stats_thread<block>(row, vocab, t, inverse_temperature));
    return all;
  }

  void pass(cuda::detail::radix_select& sel, const vocab_stats& stats) {
    ++passes;
    std::vector<std::uint32_t> count(cuda::vocab_filter_bins, 0);
    std::vector<std::uint64_t> mass(cuda::vocab_filter_bins, 0);
    for (int t = 0; t < block; ++t) {
      cuda::scan_range<block, unroll, false>(row, vocab, 0, t, [&](float l, std::int64_t v) {
        unsigned d = 0;
        std::uint64_t m = 0;
        if (sel.entry(cuda::detail::filter_element_of(l, v, inverse_temperature, geometry), stats, d, m)) {
          ++count[d];
          mass[d] += m;
        }
      });
    }
    std::uint32_t before_count = 0;
    std::uint64_t before_mass = 0;
    for (int d = cuda::vocab_filter_bins - 1; d >= 0; --d) {
      if (sel.holds_target(before_count, before_mass, count[std::size_t(d)], mass[std::size_t(d)])) {
        sel.descend(unsigned(d), before_count, before_mass, count[std::size_t(d)]);
        return;
      }
      before_count += count[std::size_t(d)];
      before_mass += mass[std::size_t(d)];
    }
    EXPECT_TRUE(sel.by_mass && sel.bits_left == geometry.total_bits()) << "no bin holds the target";
    sel.found = false;
  }

  void find(cuda::detail::radix_select& sel) {
    ++passes;
    std::uint64_t found = cuda::detail::radix_select::no_match;
    int matching = 0;
    for (int t = 0; t < block; ++t) {
      cuda::scan_range<block, unroll, false>(row, vocab, 0, t, [&](float l, std::int64_t v) {
        const cuda::detail::filter_element e = cuda::detail::filter_element_of(l, v, inverse_temperature, geometry);
        if (sel.matches(e.composite)) found = e.composite, ++matching;
      });
    }
    EXPECT_EQ(matching, 1);
    sel.settle(found);
  }
};

// The filter kernel, block after block on the host.
template <class T>
void emulate_vocab_filter(const T* logits, const cuda::vocab_filter_params& f) {
  for (std::int32_t i = 0; i < f.count; ++i) {
    const std::int32_t row = f.rows[i];
    if (row < 0 || row >= f.logit_rows) {
      f.cuts[i] = cuda::vocab_cut::all();
      continue;
    }
    host_filter_engine<T> engine{logits + std::int64_t(row) * f.vocab, f.vocab, f.inverse_temperature,
                                 cuda::detail::filter_geometry_of(f.vocab)};
    f.cuts[i] = cuda::detail::filter_cut(engine, f);
  }
}

// Rows for the filters: kind 0 bf16-rounded normal (many ties), 1 a handful
// of values, 2 a dominant token, 3 bf16 with -inf every 7th token, 4 all
// equal, 5 float normal (no ties).
std::vector<float> filter_row(int kind, std::int64_t vocab, std::uint32_t seed) {
  std::vector<float> row = test::widen(test::random_elements<bfloat16>(std::size_t(vocab), seed, 3.0f));
  switch (kind) {
    case 1:
      for (float& x : row) x = std::floor(x / 2.0f) * 0.5f;
      break;
    case 2:
      row[std::size_t(vocab / 3)] = 14.0f;
      break;
    case 3:
      for (std::size_t v = 3; v < row.size(); v += 7) row[v] = -INFINITY;
      break;
    case 4:
      std::fill(row.begin(), row.end(), 0.25f);
      break;
    case 5:
      row = test::random_elements<float>(std::size_t(vocab), seed, 3.0f);
      break;
    default: break;
  }
  return row;
}

// A find() that meets no matching token (here: the row changed after the
// passes, as the kernel's shared result would have no writer) leaves no cut,
// not one at whatever the shared word held before.
TEST(CudaVocabFilterHost, FindWithoutAMatchLeavesNoCut) {
  cuda::detail::radix_select sel =
      cuda::detail::radix_select::start(cuda::detail::filter_geometry_of(1000), false, 5);
  sel.settle(cuda::detail::radix_select::no_match);
  EXPECT_FALSE(sel.found);
  EXPECT_GT(sel.bits_left, 0);

  struct changing_row : host_filter_engine<float> {
    const float* later = nullptr;  // the row find() reads
    int finds = 0;
    void find(cuda::detail::radix_select& s) {
      ++finds;
      std::uint64_t found = cuda::detail::radix_select::no_match;
      for (std::int64_t v = 0; v < vocab; ++v) {
        const auto e = cuda::detail::filter_element_of(later[v], v, inverse_temperature, geometry);
        if (s.matches(e.composite)) found = e.composite;
      }
      s.settle(found);
    }
  };
  const std::int64_t vocab = 1000;
  std::vector<float> row = filter_row(5, vocab, 11), later(std::size_t(vocab), -3.0f);
  changing_row engine;
  engine.row = row.data();
  engine.vocab = vocab;
  engine.inverse_temperature = 1.0f;
  engine.geometry = cuda::detail::filter_geometry_of(vocab);
  engine.later = later.data();
  cuda::vocab_filter_params f{};
  f.vocab = vocab;
  f.top_p = true;  // the passes narrow to one token (no ties in the row), then find() reads
  f.top_p_threshold = cuda::filter_mass_threshold(0.01f);
  const cuda::vocab_cut all = cuda::vocab_cut::all();
  const cuda::vocab_cut cut = cuda::detail::filter_cut(engine, f);
  EXPECT_EQ(engine.finds, 1);
  EXPECT_EQ(cut.key, all.key);
  EXPECT_EQ(cut.index, all.index);
  // The same engine on an unchanged row cuts (the check above can fail).
  engine.later = row.data();
  const cuda::vocab_cut kept = cuda::detail::filter_cut(engine, f);
  EXPECT_EQ(engine.finds, 2);
  EXPECT_FALSE(kept.key == all.key && kept.index == all.index);
}

TEST(CudaVocabFilterHost, FixedPointMassIsExact) {
  EXPECT_EQ(cuda::filter_mass(1.0f), std::uint64_t(1) << 62);
  EXPECT_EQ(cuda::filter_mass(0.0f), 0u);
  EXPECT_EQ(cuda::filter_mass(NAN), 0u);
  EXPECT_EQ(cuda::filter_mass(0x1p-39f), std::uint64_t(1) << 23);
  EXPECT_EQ(cuda::filter_mass_threshold(0.5f), std::uint64_t(1) << 61);
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(-38.99f, 0.0f);
  for (int i = 0; i < 10000; ++i) {
    const float p = std::exp2(u(gen));
    EXPECT_EQ(double(cuda::filter_mass(p)), std::ldexp(double(p), 62)) << p;  // exact above 2^-39
  }
}

TEST(CudaVocabFilterHost, OrderNumbersFollowTheStableOrder) {
  for (std::int64_t vocab : {1, 2, 3, 7, 1000, 152064}) {
    const cuda::detail::filter_geometry g = cuda::detail::filter_geometry_of(vocab);
    EXPECT_GE(std::int64_t(1) << g.index_bits, vocab);
    if (vocab > 1) EXPECT_LT(std::int64_t(1) << (g.index_bits - 1), vocab);
    for (std::int32_t v : {std::int32_t(0), std::int32_t(vocab / 2), std::int32_t(vocab - 1)}) {
      const std::uint64_t c = g.composite(0x9abcdef0u, v);
      EXPECT_EQ(g.key_of(c), 0x9abcdef0u);
      EXPECT_EQ(g.index_of(c), v);
    }
  }
  const std::vector<float> row = filter_row(1, 5000, 3);
  const filter_basis b = make_basis(row.data(), 5000, 1.0f);
  const cuda::detail::filter_geometry g = cuda::detail::filter_geometry_of(5000);
  for (std::size_t j = 1; j < b.order.size(); ++j) {
    const std::int32_t x = b.order[j - 1], y = b.order[j];
    ASSERT_GT(g.composite(cuda::selection_order_bits(b.scaled[std::size_t(x)]), x),
              g.composite(cuda::selection_order_bits(b.scaled[std::size_t(y)]), y));
  }
}

// The radix select with the CPU's own statistics keeps exactly dream_filter's tokens.
TEST(CudaVocabFilterHost, CutMatchesDreamFilter) {
  struct shape {
    std::int64_t vocab;
    std::vector<int> kinds;
  };
  const shape shapes[] = {{1, {0, 4}},          {2, {0, 4}},       {7, {0, 1, 4}}, {1000, {0, 1, 2, 3, 4, 5}},
                          {20000, {0, 1, 2, 3, 5}}, {152064, {0, 1}}};
  std::vector<char> kept;
  std::uint32_t seed = 100;
  int max_passes = 0;
  for (const shape& sh : shapes) {
    for (int kind : sh.kinds) {
      const std::vector<float> row = filter_row(kind, sh.vocab, ++seed);
      for (float temperature : {1.0f, 0.7f}) {
        const float inverse_t = 1.0f / temperature;
        std::vector<float> scaled(row.size());
        for (std::size_t v = 0; v < row.size(); ++v) scaled[v] = row[v] * inverse_t;
        vocab_stats all;  // as dream_filter computes it
        for (std::size_t v = 0; v < scaled.size(); ++v) all.push(scaled[v], std::int32_t(v));
        for (const sampling_settings& s :
             filter_settings(temperature, true, {0, 1, 5, 50}, {1.0f, 0.5f, 0.9f, 0.95f, 0.99999994f})) {
          SCOPED_TRACE("vocab " + std::to_string(sh.vocab) + ", kind " + std::to_string(kind) + ", " + describe(s));
          cuda::vocab_filter_params f;
          f.vocab = sh.vocab;
          f.inverse_temperature = inverse_t;
          f.top_k = s.top_k;
          f.top_p = s.top_p < 1.0f;
          f.top_p_threshold = cuda::filter_mass_threshold(s.top_p);
          host_filter_engine<float> engine{row.data(), sh.vocab, inverse_t, cuda::detail::filter_geometry_of(sh.vocab),
                                           &all};
          const cuda::vocab_cut cut = cuda::detail::filter_cut(engine, f);
          detail::dream_filter(scaled.data(), sh.vocab, s, kept);
          int wrong = 0;
          for (std::int64_t v = 0; v < sh.vocab; ++v) {
            const bool keeps = cut.keeps(cuda::selection_order_bits(scaled[std::size_t(v)]), std::int32_t(v));
            if (keeps != bool(kept[std::size_t(v)]) && ++wrong <= 5)
              ADD_FAILURE() << "token " << v << " (scaled " << scaled[std::size_t(v)] << "): cut "
                            << (keeps ? "keeps" : "drops") << " it, dream_filter does not";
          }
          const int index_passes = (engine.geometry.index_bits + 7) / 8;
          EXPECT_LE(engine.passes, (f.top_p ? 4 + index_passes : 0) + (f.top_k > 0 ? 4 : 0));
          max_passes = std::max(max_passes, engine.passes);
        }
      }
    }
  }
  std::printf("[   INFO   ] at most %d passes per row after the statistics\n", max_passes);
}

// The filtered pass, filter kernel and scan, emulated against choose_token.
template <class T>
void check_filtered_emulation(std::int64_t vocab, std::int64_t logit_rows, std::int32_t count, std::uint32_t seed,
                              std::initializer_list<float> temperatures) {
  const logits_case<T> c = make_case<T>(vocab, logit_rows, count, seed);
  const counter_rng rng{0xf11ull + seed};
  std::vector<row_reference> raw;
  for (std::int32_t i = 0; i < count; ++i)
    raw.push_back(raw_statistics(c.wide.data() + std::int64_t(c.rows[std::size_t(i)]) * vocab, vocab));
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(count));
  std::vector<float> confidence(static_cast<std::size_t>(count));
  std::vector<unsigned char> workspace(
      cuda::vocab_pass_workspace_bytes(count, vocab, vocab_pass_variant::split, true) + 16);
  void* aligned_workspace = workspace.data() + (16 - reinterpret_cast<std::uintptr_t>(workspace.data()) % 16) % 16;
  int differing = 0, rows_checked = 0, near_ties = 0;
  for (float temperature : temperatures) {
    std::vector<filter_basis> bases;
    for (std::int64_t r = 0; r < logit_rows; ++r)
      bases.push_back(make_basis(c.wide.data() + r * vocab, vocab, filter_inverse_temperature({temperature})));
    for (bool on_kept : {false, true}) {
      for (const sampling_settings& s : filter_settings(temperature, on_kept)) {
        const std::vector<filter_reference> refs = filter_references(c, bases, raw, s, rng, count, count);
        for (vocab_pass_variant variant : {vocab_pass_variant::single_block, vocab_pass_variant::split}) {
          cuda::vocab_pass_params p;
          cuda::vocab_pass_plan plan;
          cuda::vocab_filter_params filter;
          const auto prepare = [&](confidence_metric metric) {
            const cuda::vocab_pass_options o{s, metric, c.excluded, rng, variant};
            return cuda::prepare_vocab_pass(c.logits.data(), logit_rows, vocab, c.rows.data(), count,
                                            c.sites.data(), o, tokens.data(), confidence.data(), aligned_workspace,
                                            workspace.size() - 16, p, plan, filter);
          };
          ASSERT_EQ(prepare(confidence_metric::max_prob), cudaSuccess);
          const bool filtered = filter.cuts != nullptr;
          ASSERT_EQ(filtered, cuda::vocab_pass_filters(s));
          if (filtered) {
            std::fill_n(reinterpret_cast<unsigned char*>(filter.cuts), std::size_t(count) * sizeof(cuda::vocab_cut),
                        0xff);
            emulate_vocab_filter(c.logits.data(), filter);
          }
          for (confidence_metric metric : all_metrics) {
            SCOPED_TRACE(std::string(test::type_name<T>()) + " vocab " + std::to_string(vocab) + ", " + describe(s) +
                         ", " + to_string(metric) + ", " + variant_name(variant));
            ASSERT_EQ(prepare(metric), cudaSuccess);
            std::fill(tokens.begin(), tokens.end(), -2);
            std::fill(confidence.begin(), confidence.end(), NAN);
            emulate_vocab_pass(c.logits.data(), p, plan, sampled(s), filter, s.confidence_on_sampling_distribution);
            differing += compare_filtered(c, bases, raw, s, metric, rng, refs, count, tokens.data(),
                                          confidence.data(), filtered ? filter.cuts : nullptr,
                                          /*exact_tokens=*/true, near_ties);
            rows_checked += count;
            if (::testing::Test::HasFatalFailure()) return;
          }
        }
      }
    }
  }
  std::printf("[   INFO   ] %s vocab %lld: %d of %d rows took another cut than dream_filter (within float rounding)\n",
              test::type_name<T>(), static_cast<long long>(vocab), differing, rows_checked);
}

TEST(CudaVocabPassHost, FilteredEmulationMatchesChooseToken) {
  check_filtered_emulation<float>(7, 3, 4, 51, {0.0f, 0.7f, 1.0f});
  check_filtered_emulation<bfloat16>(1001, 4, 5, 52, {0.0f, 0.7f, 1.0f});
  check_filtered_emulation<float>(1000, 4, 5, 53, {0.0f, 0.7f, 1.0f});
  check_filtered_emulation<half>(20000, 3, 3, 54, {0.0f, 1.0f});
  check_filtered_emulation<bfloat16>(152064, 2, 2, 55, {0.7f});
}

// ---- device tests -------------------------------------------------------------

// One logits case through every sampling setting, metric and variant on the GPU.
template <class T>
void check_on_device(std::int64_t vocab, std::int64_t logit_rows, std::int32_t count, std::uint32_t seed,
                     bool misaligned) {
  const logits_case<T> c = make_case<T>(vocab, logit_rows, count, seed);
  std::vector<T> padded;
  if (misaligned) padded.push_back(cuda::from_float<T>(0.0f));  // shifts every row off its 16-byte boundary
  padded.insert(padded.end(), c.logits.begin(), c.logits.end());
  device_array<T> d_logits;
  device_array<std::int32_t> d_rows, d_tokens;
  device_array<draw_site> d_sites;
  device_array<float> d_confidence;
  device_array<unsigned char> d_workspace;
  UNMASK_CUDA_OK(d_logits.upload(padded));
  UNMASK_CUDA_OK(d_rows.upload(c.rows));
  UNMASK_CUDA_OK(d_sites.upload(c.sites));
  UNMASK_CUDA_OK(d_tokens.allocate(std::size_t(count)));
  UNMASK_CUDA_OK(d_confidence.allocate(std::size_t(count)));
  std::size_t workspace_bytes = 0;
  for (vocab_pass_variant v : {vocab_pass_variant::automatic, vocab_pass_variant::split})
    workspace_bytes = std::max(workspace_bytes, cuda::vocab_pass_workspace_bytes(count, vocab, v));
  UNMASK_CUDA_OK(d_workspace.allocate(workspace_bytes));
  const T* logits = d_logits.data + (misaligned ? 1 : 0);
  const counter_rng rng{0x5eedull + seed};
  std::vector<std::int32_t> tokens;
  std::vector<float> confidence;
  for (const sampling_case& sc : sampling_cases()) {
    const std::vector<row_reference> refs = reference(c, sc.settings, rng);
    for (confidence_metric metric : all_metrics) {
      for (vocab_pass_variant variant :
           {vocab_pass_variant::single_block, vocab_pass_variant::split, vocab_pass_variant::automatic}) {
        SCOPED_TRACE(std::string(test::type_name<T>()) + " vocab " + std::to_string(vocab) +
                     (misaligned ? " misaligned, " : ", ") + sc.name + ", " + to_string(metric) + ", " +
                     variant_name(variant));
        UNMASK_CUDA_OK(d_tokens.poison());
        UNMASK_CUDA_OK(d_confidence.poison());
        const cuda::vocab_pass_options o{sc.settings, metric, c.excluded, rng, variant};
        UNMASK_CUDA_OK(cuda::vocab_pass(logits, logit_rows, vocab, d_rows.data, count, d_sites.data, o, d_tokens.data,
                                        d_confidence.data, d_workspace.data, workspace_bytes, nullptr));
        UNMASK_CUDA_OK(cudaDeviceSynchronize());
        UNMASK_CUDA_OK(d_tokens.download(tokens));
        UNMASK_CUDA_OK(d_confidence.download(confidence));
        compare_rows(c, sc.settings, metric, rng, refs, tokens, confidence, /*exact_tokens=*/false);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
}

template <class T>
void check_all_alignments(std::int64_t vocab, std::int64_t logit_rows, std::int32_t count, std::uint32_t seed) {
  for (bool misaligned : {false, true}) {
    check_on_device<T>(vocab, logit_rows, count, seed, misaligned);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(CudaVocabPass, SmallVocabulariesMatchChooseToken) {
  UNMASK_REQUIRE_DEVICE();
  std::uint32_t seed = 10;
  for (std::int64_t vocab : {1, 7, 33, 1000, 1001, 4097, 20000}) {
    check_all_alignments<float>(vocab, 5, 9, ++seed);
    check_all_alignments<half>(vocab, 5, 9, ++seed);
    check_all_alignments<bfloat16>(vocab, 5, 9, ++seed);
  }
}

TEST(CudaVocabPass, LladaVocabularyMatchesChooseToken) {
  UNMASK_REQUIRE_DEVICE();
  check_all_alignments<float>(126464, 6, 10, 21);
  check_all_alignments<half>(126464, 6, 10, 22);
  check_all_alignments<bfloat16>(126464, 6, 10, 23);
}

TEST(CudaVocabPass, QwenVocabularyMatchesChooseToken) {
  UNMASK_REQUIRE_DEVICE();
  check_all_alignments<float>(152064, 6, 10, 31);
  check_all_alignments<half>(152064, 6, 10, 32);
  check_all_alignments<bfloat16>(152064, 6, 10, 33);
}

TEST(CudaVocabPass, RowsOutsideTheLogitsGetMinusOneAndNaN) {
  UNMASK_REQUIRE_DEVICE();
  const std::int64_t vocab = 3000, logit_rows = 3;
  const std::vector<float> logits = test::random_elements<float>(std::size_t(vocab * logit_rows), 5, 2.0f);
  const std::vector<std::int32_t> rows = {0, -1, 3, 2};
  const std::vector<draw_site> sites(rows.size());
  device_array<float> d_logits, d_confidence;
  device_array<std::int32_t> d_rows, d_tokens;
  device_array<draw_site> d_sites;
  device_array<unsigned char> d_workspace;
  UNMASK_CUDA_OK(d_logits.upload(logits));
  UNMASK_CUDA_OK(d_rows.upload(rows));
  UNMASK_CUDA_OK(d_sites.upload(sites));
  UNMASK_CUDA_OK(d_tokens.allocate(rows.size()));
  UNMASK_CUDA_OK(d_confidence.allocate(rows.size()));
  const std::size_t bytes = cuda::vocab_pass_workspace_bytes(4, vocab, vocab_pass_variant::split);
  UNMASK_CUDA_OK(d_workspace.allocate(bytes));
  for (vocab_pass_variant variant : {vocab_pass_variant::single_block, vocab_pass_variant::split}) {
    SCOPED_TRACE(variant_name(variant));
    cuda::vocab_pass_options o;
    o.variant = variant;
    UNMASK_CUDA_OK(d_tokens.poison());
    UNMASK_CUDA_OK(d_confidence.poison());
    UNMASK_CUDA_OK(cuda::vocab_pass(d_logits.data, logit_rows, vocab, d_rows.data, 4, d_sites.data, o, d_tokens.data,
                                    d_confidence.data, d_workspace.data, bytes, nullptr));
    UNMASK_CUDA_OK(cudaDeviceSynchronize());
    std::vector<std::int32_t> tokens;
    std::vector<float> confidence;
    UNMASK_CUDA_OK(d_tokens.download(tokens));
    UNMASK_CUDA_OK(d_confidence.download(confidence));
    for (std::size_t i : {std::size_t(0), std::size_t(3)}) {
      const token_choice want = choose_token(logits.data() + rows[i] * vocab, vocab, {}, confidence_metric::max_prob,
                                             -1, counter_rng{}, {});
      EXPECT_EQ(tokens[i], want.token);
      EXPECT_NEAR(confidence[i], want.confidence, 1e-5 * want.confidence);
    }
    for (std::size_t i : {std::size_t(1), std::size_t(2)}) {
      EXPECT_EQ(tokens[i], -1);
      EXPECT_TRUE(std::isnan(confidence[i]));
    }
  }
}

// ---- filters on the device -----------------------------------------------------

// 64 rows of one vocabulary through every filter setting; the listed rows'
// first 1, 7 or 64, both variants, three metrics. `brief`: the few launches
// compute-sanitizer can afford (T = 0.7 on the kept distribution, 7 rows,
// both variants, max_prob).
template <class T>
void check_filters_on_device(std::int64_t vocab, std::uint32_t seed, bool brief = false) {
  constexpr std::int32_t rows = 64;
  const logits_case<T> c = make_case<T>(vocab, rows, rows, seed);
  const counter_rng rng{0xf11ull + seed};
  device_array<T> d_logits;
  device_array<std::int32_t> d_rows, d_tokens;
  device_array<draw_site> d_sites;
  device_array<float> d_confidence;
  device_array<unsigned char> d_workspace;
  UNMASK_CUDA_OK(d_logits.upload(c.logits));
  UNMASK_CUDA_OK(d_rows.upload(c.rows));
  UNMASK_CUDA_OK(d_sites.upload(c.sites));
  UNMASK_CUDA_OK(d_tokens.allocate(std::size_t(rows)));
  UNMASK_CUDA_OK(d_confidence.allocate(std::size_t(rows)));
  constexpr std::int32_t counts[] = {1, 7, rows};
  constexpr vocab_pass_variant variants[] = {vocab_pass_variant::single_block, vocab_pass_variant::split};
  std::size_t workspace_bytes = 0;
  for (std::int32_t count : counts)
    for (vocab_pass_variant v : variants)
      workspace_bytes = std::max(workspace_bytes, cuda::vocab_pass_workspace_bytes(count, vocab, v, true));
  UNMASK_CUDA_OK(d_workspace.allocate(workspace_bytes));
  std::vector<row_reference> raw;
  for (std::int32_t i = 0; i < rows; ++i)
    raw.push_back(raw_statistics(c.wide.data() + std::int64_t(c.rows[std::size_t(i)]) * vocab, vocab));
  std::vector<std::int32_t> tokens;
  std::vector<float> confidence;
  std::vector<cuda::vocab_cut> cuts;
  int differing = 0, near_ties = 0, rows_checked = 0;
  const std::vector<float> temperatures = brief ? std::vector<float>{0.7f} : std::vector<float>{0.0f, 0.7f, 1.0f};
  const std::vector<bool> kept_choices = brief ? std::vector<bool>{true} : std::vector<bool>{false, true};
  const std::vector<std::int32_t> count_choices = brief ? std::vector<std::int32_t>{7}
                                                        : std::vector<std::int32_t>(std::begin(counts), std::end(counts));
  const std::vector<confidence_metric> metrics =
      brief ? std::vector<confidence_metric>{confidence_metric::max_prob}
            : std::vector<confidence_metric>{confidence_metric::max_prob, confidence_metric::margin,
                                             confidence_metric::neg_entropy};
  for (float temperature : temperatures) {
    std::vector<filter_basis> bases;
    for (std::int64_t r = 0; r < rows; ++r)
      bases.push_back(make_basis(c.wide.data() + r * vocab, vocab, filter_inverse_temperature({temperature})));
    for (bool on_kept : kept_choices) {
      for (const sampling_settings& s : filter_settings(temperature, on_kept)) {
        const std::vector<filter_reference> refs = filter_references(c, bases, raw, s, rng, rows, /*cpu_rows=*/7);
        for (std::int32_t count : count_choices) {
          for (vocab_pass_variant variant : variants) {
            for (confidence_metric metric : metrics) {
              SCOPED_TRACE(std::string(test::type_name<T>()) + " vocab " + std::to_string(vocab) + ", " +
                           std::to_string(count) + " rows, " + describe(s) + ", " + to_string(metric) + ", " +
                           variant_name(variant));
              UNMASK_CUDA_OK(d_tokens.poison());
              UNMASK_CUDA_OK(d_confidence.poison());
              UNMASK_CUDA_OK(d_workspace.poison());
              const cuda::vocab_pass_options o{s, metric, c.excluded, rng, variant};
              UNMASK_CUDA_OK(cuda::vocab_pass(d_logits.data, rows, vocab, d_rows.data, count, d_sites.data, o,
                                              d_tokens.data, d_confidence.data, d_workspace.data, workspace_bytes,
                                              nullptr));
              UNMASK_CUDA_OK(cudaDeviceSynchronize());
              UNMASK_CUDA_OK(d_tokens.download(tokens));
              UNMASK_CUDA_OK(d_confidence.download(confidence));
              const bool filtered = cuda::vocab_pass_filters(s);
              if (filtered) {
                cuts.resize(std::size_t(count));
                UNMASK_CUDA_OK(cudaMemcpy(cuts.data(),
                                          d_workspace.data + cuda::vocab_pass_cuts_offset(count, vocab, variant),
                                          cuts.size() * sizeof(cuda::vocab_cut), cudaMemcpyDeviceToHost));
              }
              differing += compare_filtered(c, bases, raw, s, metric, rng, refs, count, tokens.data(),
                                            confidence.data(), filtered ? cuts.data() : nullptr,
                                            /*exact_tokens=*/false, near_ties);
              rows_checked += count;
              if (::testing::Test::HasFatalFailure()) return;
            }
          }
        }
      }
    }
  }
  std::printf("[   INFO   ] %s vocab %lld: %d of %d rows took another cut than dream_filter (within float "
              "rounding), %d sampled near ties\n",
              test::type_name<T>(), static_cast<long long>(vocab), differing, rows_checked, near_ties);
}

TEST(CudaVocabPass, FiltersMatchChooseTokenSmallVocabulary) {
  UNMASK_REQUIRE_DEVICE();
  check_filters_on_device<float>(1000, 61);
  check_filters_on_device<bfloat16>(1000, 62);
}

// Few launches, for compute-sanitizer (scripts/gpu-check.sh); vocabulary 1001
// makes every other row start misaligned, so the filter's element-by-element
// head and tail run too.
TEST(CudaVocabPass, FiltersBriefForTheSanitizer) {
  UNMASK_REQUIRE_DEVICE();
  check_filters_on_device<float>(1001, 67, true);
  check_filters_on_device<bfloat16>(1001, 68, true);
}

TEST(CudaVocabPass, FiltersMatchChooseTokenLladaVocabulary) {
  UNMASK_REQUIRE_DEVICE();
  check_filters_on_device<float>(126464, 63);
  check_filters_on_device<bfloat16>(126464, 64);
}

TEST(CudaVocabPass, FiltersMatchChooseTokenQwenVocabulary) {
  UNMASK_REQUIRE_DEVICE();
  check_filters_on_device<float>(152064, 65);
  check_filters_on_device<bfloat16>(152064, 66);
}

// ---- logits processors -----------------------------------------------------------

// The processors the pass is checked with: LLaDA's two options (a ban at
// both readings and one at the confidence reading only) and a user's bias
// that depends on the draw site.
struct site_bias {
  std::int32_t token = 0;
  UNMASK_HOST_DEVICE float operator()(float l, std::int32_t v, const draw_site& s) const {
    return v == token || v == std::int32_t(s.position % 7) ? l + 8.0f : l;
  }
};

std::vector<sampling_settings> processor_settings() {
  return {{0.0f, 0, 1.0f, false}, {0.7f, 0, 1.0f, false}, {1.0f, 0, 1.0f, true}, {0.7f, 0, 1.0f, true}};
}

// The best token of a listed row other than the excluded one.
std::int32_t row_best(const logits_case<float>& c, std::int32_t i) {
  const float* row = c.wide.data() + std::int64_t(c.rows[std::size_t(i)]) * c.vocab;
  std::int32_t best = c.excluded == 0 ? 1 : 0;
  for (std::int32_t v = 0; v < std::int32_t(c.vocab); ++v)
    if (v != c.excluded && row[v] > row[best]) best = v;
  return best;
}

// Confidences of the pass and of choose_token differ by the order of their
// float sums over the vocabulary (choose_token's is sequential).
constexpr double processed_confidence_tolerance = 2e-4;

// The kernels' per-thread code with a processor (made from the case, so it
// can target the rows' best tokens), run thread by thread on the host, gives
// choose_token's choice with the same processor, and the processor changes
// the choice of some row.
template <class MakeProcessor>
void check_processor_emulation(const MakeProcessor& make, std::int64_t vocab, std::uint32_t seed) {
  const logits_case<float> c = make_case<float>(vocab, 4, 5, seed);
  const auto processor = make(c);
  bool changed = false;
  const counter_rng rng{0xabcull + seed};
  std::vector<std::int32_t> tokens(5);
  std::vector<float> confidence(5);
  std::vector<unsigned char> workspace(cuda::vocab_pass_workspace_bytes(5, vocab, vocab_pass_variant::split) + 16);
  void* aligned = workspace.data() + (16 - reinterpret_cast<std::uintptr_t>(workspace.data()) % 16) % 16;
  for (const sampling_settings& s : processor_settings()) {
    for (confidence_metric metric : all_metrics) {
      for (vocab_pass_variant variant : {vocab_pass_variant::single_block, vocab_pass_variant::split}) {
        SCOPED_TRACE(concat("vocab ", vocab, ", T ", s.temperature, ", on sampling ",
                            s.confidence_on_sampling_distribution, ", ", to_string(metric), ", ", variant_name(variant)));
        const cuda::vocab_pass_options o{s, metric, c.excluded, rng, variant};
        cuda::vocab_pass_params p;
        cuda::vocab_pass_plan plan;
        cuda::vocab_filter_params filter;
        ASSERT_EQ(cuda::prepare_vocab_pass(c.logits.data(), 4, vocab, c.rows.data(), 5, c.sites.data(), o,
                                           tokens.data(), confidence.data(), aligned, workspace.size() - 16, p, plan,
                                           filter),
                  cudaSuccess);
        emulate_vocab_pass(c.logits.data(), p, plan, sampled(s), {}, false, processor);
        for (std::int32_t i = 0; i < 5; ++i) {
          const float* base = c.logits.data() + std::int64_t(c.rows[std::size_t(i)]) * vocab;
          const draw_site site = c.sites[std::size_t(i)];
          const token_choice want = choose_token(base, vocab, s, metric, c.excluded, rng, site, processor);
          EXPECT_EQ(tokens[std::size_t(i)], want.token) << "row " << i;
          // The entropy cancels: its error is relative to the log-sum-exp, about log(vocab).
          const double entropy_terms = metric == confidence_metric::neg_entropy ? 0.5 * std::log(double(vocab)) : 0.0;
          EXPECT_NEAR(confidence[std::size_t(i)], want.confidence,
                      processed_confidence_tolerance * (std::fabs(want.confidence) + entropy_terms) + 1e-6)
              << "row " << i;
          const token_choice plain = choose_token(base, vocab, s, metric, c.excluded, rng, site);
          changed = changed || plain.token != want.token ||
                    std::fabs(plain.confidence - want.confidence) > 0.01 * std::fabs(want.confidence);
        }
      }
    }
  }
  EXPECT_TRUE(changed) << "the processor changed no row's choice (vocab " << vocab << ", seed " << seed << ")";
}

TEST(CudaVocabPassHost, ProcessorEmulationMatchesChooseToken) {
  for (std::int64_t vocab : {7, 1001, 20000}) {
    // LLaDA's options with EOS the best token of one row and EOT of another.
    check_processor_emulation([](const logits_case<float>& c) {
      return token_ban_processor::llada(true, true, row_best(c, 0), row_best(c, 1));
    }, vocab, 51);
    check_processor_emulation([](const logits_case<float>& c) {
      return token_ban_processor::llada(false, true, 0, row_best(c, 2));
    }, vocab, 52);
    check_processor_emulation([](const logits_case<float>&) { return site_bias{1}; }, vocab, 53);
    // A confidence metric of one's own, alone and with a processor.
    check_processor_emulation([](const logits_case<float>&) {
      return token_rules<no_logits_processor, test::log_probability>{};
    }, vocab, 54);
    check_processor_emulation([](const logits_case<float>& c) {
      return token_rules<token_ban_processor, test::jittered_probability>{
          token_ban_processor::llada(true, false, row_best(c, 0), 0), {}};
    }, vocab, 55);
  }
}

// On the device, with Dream's filters too: the pass with a processor
// chooses what choose_token chooses with it (a sampled row may differ only
// at a near tie of the processed keys).
template <class Processor>
void check_processor_on_device(const Processor& processor, std::int64_t vocab, std::uint32_t seed) {
  constexpr std::int32_t count = 16;
  const logits_case<float> c = make_case<float>(vocab, count, count, seed);
  const counter_rng rng{0xdecull + seed};
  device_array<float> d_logits, d_confidence;
  device_array<std::int32_t> d_rows, d_tokens;
  device_array<draw_site> d_sites;
  device_array<unsigned char> d_workspace;
  UNMASK_CUDA_OK(d_logits.upload(c.logits));
  UNMASK_CUDA_OK(d_rows.upload(c.rows));
  UNMASK_CUDA_OK(d_sites.upload(c.sites));
  UNMASK_CUDA_OK(d_tokens.allocate(std::size_t(count)));
  UNMASK_CUDA_OK(d_confidence.allocate(std::size_t(count)));
  std::vector<sampling_settings> settings = processor_settings();
  settings.push_back({0.7f, 20, 1.0f, true});
  settings.push_back({0.0f, 5, 1.0f, true});
  settings.push_back({1.0f, 3, 1.0f, false});
  for (const sampling_settings& s : settings) {
    for (vocab_pass_variant variant : {vocab_pass_variant::single_block, vocab_pass_variant::split}) {
      SCOPED_TRACE(concat("vocab ", vocab, ", T ", s.temperature, ", top_k ", s.top_k, ", top_p ", s.top_p, ", ",
                          variant_name(variant)));
      const std::size_t bytes = cuda::vocab_pass_workspace_bytes(count, vocab, variant, cuda::vocab_pass_filters(s));
      UNMASK_CUDA_OK(d_workspace.allocate(std::max<std::size_t>(bytes, 16)));
      const cuda::vocab_pass_options o{s, confidence_metric::max_prob, c.excluded, rng, variant};
      UNMASK_CUDA_OK(cuda::vocab_pass(d_logits.data, count, vocab, d_rows.data, count, d_sites.data, o,
                                      d_tokens.data, d_confidence.data, d_workspace.data, bytes, nullptr, processor));
      UNMASK_CUDA_OK(cudaDeviceSynchronize());
      std::vector<std::int32_t> tokens;
      std::vector<float> confidence;
      UNMASK_CUDA_OK(d_tokens.download(tokens));
      UNMASK_CUDA_OK(d_confidence.download(confidence));
      for (std::int32_t i = 0; i < count; ++i) {
        const float* row = c.wide.data() + std::int64_t(c.rows[std::size_t(i)]) * vocab;
        const draw_site site = c.sites[std::size_t(i)];
        const token_choice want = choose_token(row, vocab, s, confidence_metric::max_prob, c.excluded, rng, site,
                                               processor);
        if (tokens[std::size_t(i)] != want.token && sampled(s)) {
          auto key = [&](std::int32_t v) {
            const float l = processed_choice_logit(processor, row[v], v, site) * (1.0f / s.temperature);
            return double(l) + rng.gumbel(random_purpose::token, site.sequence, site.step, site.position,
                                          std::uint32_t(v));
          };
          ASSERT_GE(tokens[std::size_t(i)], 0) << "row " << i;
          EXPECT_LE(std::fabs(key(want.token) - key(tokens[std::size_t(i)])), 1e-4) << "row " << i;
          continue;
        }
        EXPECT_EQ(tokens[std::size_t(i)], want.token) << "row " << i;
        EXPECT_NEAR(confidence[std::size_t(i)], want.confidence,
                    processed_confidence_tolerance * std::fabs(want.confidence) + 1e-6)
            << "row " << i;
      }
    }
  }
}

TEST(CudaVocabPass, ProcessorsMatchChooseToken) {
  UNMASK_REQUIRE_DEVICE();
  for (std::int64_t vocab : {1001, 126464}) {
    const std::int32_t eos = std::int32_t(vocab / 3), eot = std::int32_t(vocab - 1);
    check_processor_on_device(token_ban_processor::llada(true, true, eos, eot), vocab, 61);
    check_processor_on_device(site_bias{std::int32_t(vocab / 5)}, vocab, 62);
    check_processor_on_device(token_rules<no_logits_processor, test::log_probability>{}, vocab, 63);
    check_processor_on_device(token_rules<site_bias, test::jittered_probability>{{3}, {}}, vocab, 64);
  }
}

// A token sampler of one's own (token_rules' key), greedy settings: the
// per-thread code on the host and the pass on the device give choose_token's
// choice with it, and a Gumbel key written as the built-in sampler computes
// it draws the built-in sampler's tokens.
using gumbel_rules = token_rules<no_logits_processor, confidence_metric, test::tempered_gumbel>;

TEST(CudaVocabPassHost, SamplerEmulationMatchesChooseToken) {
  const gumbel_rules rules{{}, {}, {0.7f}};
  for (std::int64_t vocab : {7, 1001, 20000}) {
    const logits_case<float> c = make_case<float>(vocab, 4, 5, 71);
    const counter_rng rng{0x5a5ull};
    std::vector<std::int32_t> tokens(5);
    std::vector<float> confidence(5);
    for (vocab_pass_variant variant : {vocab_pass_variant::single_block, vocab_pass_variant::split}) {
      SCOPED_TRACE(concat("vocab ", vocab, ", ", variant_name(variant)));
      const cuda::vocab_pass_options o{{}, confidence_metric::max_prob, c.excluded, rng, variant};
      std::vector<unsigned char> workspace(cuda::vocab_pass_workspace_bytes(5, vocab, variant) + 16);
      void* aligned = workspace.data() + (16 - reinterpret_cast<std::uintptr_t>(workspace.data()) % 16) % 16;
      cuda::vocab_pass_params p;
      cuda::vocab_pass_plan plan;
      cuda::vocab_filter_params filter;
      ASSERT_EQ(cuda::prepare_vocab_pass(c.logits.data(), 4, vocab, c.rows.data(), 5, c.sites.data(), o, tokens.data(),
                                         confidence.data(), aligned, workspace.size() - 16, p, plan, filter),
                cudaSuccess);
      emulate_vocab_pass(c.logits.data(), p, plan, false, {}, false, rules);
      for (std::int32_t i = 0; i < 5; ++i) {
        const float* base = c.logits.data() + std::int64_t(c.rows[std::size_t(i)]) * vocab;
        const draw_site site = c.sites[std::size_t(i)];
        const token_choice want = choose_token(base, vocab, {}, confidence_metric::max_prob, c.excluded, rng, site,
                                               rules);
        const token_choice builtin = choose_token(base, vocab, {0.7f, 0, 1.0f, false}, confidence_metric::max_prob,
                                                  c.excluded, rng, site);
        EXPECT_EQ(tokens[std::size_t(i)], want.token) << "row " << i;
        EXPECT_EQ(want.token, builtin.token) << "row " << i;
        EXPECT_NEAR(confidence[std::size_t(i)], want.confidence,
                    processed_confidence_tolerance * std::fabs(want.confidence) + 1e-6)
            << "row " << i;
      }
    }
  }
}

TEST(CudaVocabPass, SamplersMatchChooseToken) {
  UNMASK_REQUIRE_DEVICE();
  constexpr std::int32_t count = 16;
  const gumbel_rules rules{{}, {}, {0.7f}};
  for (std::int64_t vocab : {1001, 126464}) {
    const logits_case<float> c = make_case<float>(vocab, count, count, 81);
    const counter_rng rng{0x77ull};
    device_array<float> d_logits, d_confidence;
    device_array<std::int32_t> d_rows, d_tokens;
    device_array<draw_site> d_sites;
    device_array<unsigned char> d_workspace;
    UNMASK_CUDA_OK(d_logits.upload(c.logits));
    UNMASK_CUDA_OK(d_rows.upload(c.rows));
    UNMASK_CUDA_OK(d_sites.upload(c.sites));
    UNMASK_CUDA_OK(d_tokens.allocate(std::size_t(count)));
    UNMASK_CUDA_OK(d_confidence.allocate(std::size_t(count)));
    const std::size_t bytes = cuda::vocab_pass_workspace_bytes(count, vocab);
    UNMASK_CUDA_OK(d_workspace.allocate(std::max<std::size_t>(bytes, 16)));
    cuda::vocab_pass_options o{{}, confidence_metric::max_prob, c.excluded, rng};
    UNMASK_CUDA_OK(cuda::vocab_pass(d_logits.data, count, vocab, d_rows.data, count, d_sites.data, o, d_tokens.data,
                                    d_confidence.data, d_workspace.data, bytes, nullptr, rules));
    UNMASK_CUDA_OK(cudaDeviceSynchronize());
    std::vector<std::int32_t> tokens;
    UNMASK_CUDA_OK(d_tokens.download(tokens));
    for (std::int32_t i = 0; i < count; ++i) {
      const float* row = c.wide.data() + std::int64_t(c.rows[std::size_t(i)]) * vocab;
      const draw_site site = c.sites[std::size_t(i)];
      const token_choice want = choose_token(row, vocab, {}, confidence_metric::max_prob, c.excluded, rng, site, rules);
      if (tokens[std::size_t(i)] == want.token) continue;
      ASSERT_GE(tokens[std::size_t(i)], 0) << "row " << i;
      const double gap = double(rules.choice_key(row[want.token], want.token, site, rng)) -
                         double(rules.choice_key(row[tokens[std::size_t(i)]], tokens[std::size_t(i)], site, rng));
      EXPECT_LE(std::fabs(gap), 1e-4) << "row " << i << ": not a near tie";
    }
    // Greedy settings only: the sampler takes the built-in one's place.
    o.sampling.temperature = 0.5f;
    EXPECT_EQ(cuda::vocab_pass(d_logits.data, count, vocab, d_rows.data, count, d_sites.data, o, d_tokens.data,
                               d_confidence.data, d_workspace.data, bytes, nullptr, rules),
              cudaErrorInvalidValue);
  }
}

}  // namespace
}  // namespace unmask
