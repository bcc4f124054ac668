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
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
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
  o.sampling.top_k = 5;
  EXPECT_EQ(call(32, 2, o, sites), cudaErrorNotSupported);
  o.sampling.top_k = 0;
  o.sampling.top_p = 0.9f;
  EXPECT_EQ(call(32, 2, o, sites), cudaErrorNotSupported);
  o.sampling.top_p = 0.0f;
  EXPECT_EQ(call(32, 2, o, sites), cudaErrorInvalidValue);
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

// Runs the kernels' per-thread code on the host, thread after thread, and
// merges as the kernels do (in thread order instead of cub's tree).
template <class T>
void emulate_vocab_pass(const T* logits, const cuda::vocab_pass_params& p, const cuda::vocab_pass_plan& plan,
                        bool is_sampled) {
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
        chunk.merge(is_sampled ? cuda::detail::scan_vocab<block, true>(base, begin, end, t, p, site)
                               : cuda::detail::scan_vocab<block, false>(base, begin, end, t, p, site));
      }
      all.merge(chunk);
    }
    cuda::detail::finish_row(all, valid, p, i);
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
        ASSERT_EQ(cuda::prepare_vocab_pass(c.logits.data(), logit_rows, vocab, c.rows.data(), count, c.sites.data(), o,
                                           tokens.data(), confidence.data(), aligned_workspace,
                                           workspace.size() - 16, p, plan),
                  cudaSuccess);
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

}  // namespace
}  // namespace unmask
