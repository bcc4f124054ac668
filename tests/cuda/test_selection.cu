// Commit selection on the GPU (unmask/cuda/selection.hpp) against a host
// reference that takes the steps of diffusion_decoder::run_confidence_block
// after the token choice: order keys (the confidence, or confidence /
// alg_temp + Gumbel noise for the stochastic rule), std::stable_sort by key
// with `>` (NaN last, the one order the decoder leaves undefined),
// count_schedule::count, selection_rule::commit_count over the sorted
// confidences, tokens written at the first `take` positions.
//
// Host tests, which run everywhere: the launcher rejects bad arguments before
// touching the device; max_candidates picks the documented instance; and
// selection_order_bits orders every pair of numbers as `>` and `==` do (ties,
// -0 and +0, infinities, subnormals) with every NaN below -inf.
//
// Device tests (skipped without a GPU): every selection rule (top_k,
// threshold, threshold_dinfer, factor, entropy_bounded, stochastic) with the
// max_prob, margin and neg_entropy metrics, under the llada_even and dream
// schedules, over sequences of 0, 1, 7, 32, 200 and 1000 candidates at
// different block steps, with continuous confidences and with a few repeated
// levels (many exact ties, -0 and +0 among them), through every kernel
// instance. Canvases are uploaded with a poison value outside the candidates
// (gaps between the sequences' canvases included) and compared whole, and
// the committed counts exactly. The stochastic reference takes its Gumbel
// noise from counter_rng::gumbel run on the device (its logf may differ from
// the host's in the last ulp, which the test bounds separately), so the
// comparison is exact. Also: NaN confidences of both signs sort last, and a
// sequence with a negative count or more candidates than max_candidates gets
// -1 and keeps its canvas while its neighbours are served. And a user's own
// rule and schedule types (examples/margin_gap_rule.hpp,
// examples/halving_schedule.hpp, a rule with its own order key) instantiate
// the kernel and commit what the CPU's commit_selection commits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "halving_schedule.hpp"
#include "margin_gap_rule.hpp"
#include "support/user_policies.hpp"
#include "unmask/cuda/selection.hpp"
#include "unmask/policy/commit.hpp"

namespace unmask {
namespace {

using cuda::selection_options;
using cuda::selection_sequence;
using test::device_array;

constexpr std::int32_t mask_id = 126336;
constexpr std::int32_t poison = -77;
constexpr std::int32_t canvas_gap = 5;  // poisoned cells between two sequences' canvases

constexpr selection_kind all_kinds[] = {selection_kind::top_k,  selection_kind::threshold,
                                        selection_kind::threshold_dinfer, selection_kind::factor,
                                        selection_kind::entropy_bounded,  selection_kind::stochastic};
constexpr confidence_metric tested_metrics[] = {confidence_metric::max_prob, confidence_metric::margin,
                                                confidence_metric::neg_entropy};

const char* kind_name(selection_kind k) {
  switch (k) {
    case selection_kind::threshold: return "threshold";
    case selection_kind::threshold_dinfer: return "threshold_dinfer";
    case selection_kind::factor: return "factor";
    case selection_kind::entropy_bounded: return "entropy_bounded";
    case selection_kind::stochastic: return "stochastic";
    default: return "top_k";
  }
}

// ---- host tests --------------------------------------------------------------

TEST(CudaSelectionHost, LauncherChecksItsArguments) {
  selection_sequence sequence;
  std::int32_t positions[4] = {}, tokens[4] = {}, canvas[8] = {}, committed[1] = {};
  float confidence[4] = {};
  const selection_options good;
  const auto call = [&](std::int32_t count, std::int32_t max_candidates, const selection_options& o,
                        const selection_sequence* s = nullptr, const std::int32_t* p = nullptr,
                        std::int32_t* c = nullptr, std::int32_t* k = nullptr) {
    return cuda::select_and_commit(s ? s : &sequence, count, max_candidates, p ? p : positions, tokens, confidence, o,
                                   c ? c : canvas, k ? k : committed, nullptr);
  };
  EXPECT_EQ(call(-1, 4, good), cudaErrorInvalidValue);
  EXPECT_EQ(call(1, -1, good), cudaErrorInvalidValue);
  EXPECT_EQ(call(1, cuda::selection_max_candidates + 1, good), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::select_and_commit(nullptr, 1, 4, positions, tokens, confidence, good, canvas, committed, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::select_and_commit(&sequence, 1, 4, nullptr, tokens, confidence, good, canvas, committed, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::select_and_commit(&sequence, 1, 4, positions, nullptr, confidence, good, canvas, committed, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::select_and_commit(&sequence, 1, 4, positions, tokens, nullptr, good, canvas, committed, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::select_and_commit(&sequence, 1, 4, positions, tokens, confidence, good, nullptr, committed, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::select_and_commit(&sequence, 1, 4, positions, tokens, confidence, good, canvas, nullptr, nullptr),
            cudaErrorInvalidValue);
  // Nothing to do: success without launching, even with null pointers.
  EXPECT_EQ(cuda::select_and_commit(nullptr, 0, 0, nullptr, nullptr, nullptr, good, nullptr, nullptr, nullptr),
            cudaSuccess);
  EXPECT_EQ(cuda::select_and_commit(nullptr, 0, cuda::selection_max_candidates, nullptr, nullptr, nullptr, good,
                                    nullptr, nullptr, nullptr),
            cudaSuccess);
  // Options the CPU decoder's validate() rejects, and enum values no rule has.
  selection_options o;
  o.rule = selection_rule::fast_dllm_factor(0.0f);
  EXPECT_EQ(call(1, 4, o), cudaErrorInvalidValue);
  o.rule = selection_rule::fast_dllm_factor(NAN);
  EXPECT_EQ(call(1, 4, o), cudaErrorInvalidValue);
  o.rule = selection_rule::entropy_bounded(-0.5f);
  EXPECT_EQ(call(1, 4, o), cudaErrorInvalidValue);
  o.rule = selection_rule::dream_alg_temp(0.0f);
  EXPECT_EQ(call(1, 4, o), cudaErrorInvalidValue);
  o.rule = selection_rule::dream_alg_temp(NAN);
  EXPECT_EQ(call(0, 4, o), cudaErrorInvalidValue);  // checked before the nothing-to-do return
  o.rule = selection_rule::top_k();
  o.rule.kind = selection_kind(99);
  EXPECT_EQ(call(1, 4, o), cudaErrorInvalidValue);
  o = good;
  o.schedule.kind = count_schedule_kind(7);
  EXPECT_EQ(call(1, 4, o), cudaErrorInvalidValue);
  o = good;
  o.metric = confidence_metric(9);
  EXPECT_EQ(call(1, 4, o), cudaErrorInvalidValue);
}

TEST(CudaSelectionHost, MaxCandidatesPicksTheInstance) {
  EXPECT_EQ(cuda::selection_capacity(-1), 0);
  EXPECT_EQ(cuda::selection_capacity(0), 128);
  EXPECT_EQ(cuda::selection_capacity(128), 128);
  EXPECT_EQ(cuda::selection_capacity(129), 512);
  EXPECT_EQ(cuda::selection_capacity(512), 512);
  EXPECT_EQ(cuda::selection_capacity(513), 1024);
  EXPECT_EQ(cuda::selection_capacity(1024), 1024);
  EXPECT_EQ(cuda::selection_capacity(2048), 2048);
  EXPECT_EQ(cuda::selection_capacity(2049), 4096);
  EXPECT_EQ(cuda::selection_capacity(cuda::selection_max_candidates), cuda::selection_max_candidates);
  EXPECT_EQ(cuda::selection_capacity(cuda::selection_max_candidates + 1), 0);
}

TEST(CudaSelectionHost, OrderBitsOrderLikeGreater) {
  std::vector<float> values = {0.0f,     -0.0f,    1.0f,     -1.0f,    0.5f,    0.5f,     INFINITY,
                               -INFINITY, FLT_MAX, -FLT_MAX, FLT_MIN,  -FLT_MIN, 1e-40f,  -1e-40f,
                               1e-45f,   -1e-45f,  0.9f,     0.9f,     -0.05f,  -0.05f,   2.0f};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int i = 0; i < 200; ++i) values.push_back(normal(rng));
  for (int i = 0; i < 20; ++i) values.push_back(values[std::size_t(i) * 7 % values.size()]);  // exact repeats
  for (float a : values) {
    EXPECT_NE(cuda::selection_order_bits(a), 0u) << a;
    for (float b : values) {
      const std::uint32_t x = cuda::selection_order_bits(a), y = cuda::selection_order_bits(b);
      ASSERT_EQ(a > b, x > y) << a << " vs " << b;
      ASSERT_EQ(a == b, x == y) << a << " vs " << b;
    }
  }
  const float nans[] = {NAN, -NAN, bits_float(0x7f800001u), bits_float(0xffffffffu), bits_float(0xffc00000u)};
  for (float n : nans) {
    EXPECT_EQ(cuda::selection_order_bits(n), 0u);
    EXPECT_LT(cuda::selection_order_bits(n), cuda::selection_order_bits(-INFINITY));
  }
}

// ---- device tests: inputs and the host reference ----------------------------

struct sequence_spec {
  std::int32_t m;  // candidates (negative: a broken count)
  std::int32_t block_step, steps, initial_masks;
};

struct selection_case {
  std::vector<selection_sequence> sequences;
  std::vector<std::int32_t> positions, tokens;
  std::vector<float> confidence;
  std::vector<std::int32_t> canvas;  // all sequences' canvases, gaps between them
};

// A confidence of the metric's range: continuous (half near the top, so the
// threshold-type rules commit more than one), or one of a few levels.
float draw_confidence(confidence_metric metric, bool ties, std::mt19937& rng) {
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  if (ties) {
    static const float probability_levels[] = {1.0f, 0.95f, 0.9f, 0.5f, 0.25f};
    static const float entropy_levels[] = {0.0f, -0.0f, -0.05f, -0.1f, -1.0f, -2.0f};
    if (metric == confidence_metric::neg_entropy) return entropy_levels[rng() % 6];
    return probability_levels[rng() % 5];
  }
  const bool high = rng() % 2 == 0;
  const float u = unit(rng);
  switch (metric) {
    case confidence_metric::neg_entropy: return high ? -0.1f * u : -5.0f * u;
    case confidence_metric::margin: return high ? 1.0f - 0.1f * u - 1e-6f : 0.999f * u;
    default: return high ? 1.0f - 0.08f * u : std::max(u, 1e-6f);
  }
}

// Canvas s: a prompt, then a block of m + m / 3 + 2 positions of which m
// random ones (listed ascending) are masked candidates, then a tail; every
// cell but the candidates (and the gaps) holds `poison`.
selection_case make_case(const std::vector<sequence_spec>& specs, confidence_metric metric, bool ties,
                         std::uint32_t seed) {
  std::mt19937 rng(seed);
  selection_case c;
  std::int64_t offset = canvas_gap;
  c.canvas.assign(std::size_t(canvas_gap), poison);
  for (std::size_t s = 0; s < specs.size(); ++s) {
    const sequence_spec& spec = specs[s];
    const std::int32_t m = std::max(spec.m, 0);
    const std::int32_t prompt = 3 + std::int32_t(rng() % 20), block = m + m / 3 + 2, tail = 9;
    selection_sequence q;
    q.candidate_begin = std::int32_t(c.positions.size());
    q.candidate_count = spec.m;
    q.canvas_offset = offset;
    q.id = 1000u + 17u * std::uint32_t(s);
    q.rng_step = 3u + std::uint32_t(s) * 5u;
    q.block_step = spec.block_step;
    q.steps = spec.steps;
    q.initial_masks = spec.initial_masks;
    c.sequences.push_back(q);
    std::vector<std::int32_t> slots(static_cast<std::size_t>(block));
    for (std::int32_t i = 0; i < block; ++i) slots[std::size_t(i)] = prompt + i;
    std::shuffle(slots.begin(), slots.end(), rng);
    slots.resize(std::size_t(m));
    std::sort(slots.begin(), slots.end());
    const std::int32_t length = prompt + block + tail;
    c.canvas.resize(c.canvas.size() + std::size_t(length), poison);
    for (std::int32_t p : slots) {
      c.positions.push_back(p);
      c.tokens.push_back(std::int32_t(rng() % 126000));
      c.confidence.push_back(draw_confidence(metric, ties, rng));
      c.canvas[std::size_t(offset + p)] = mask_id;
    }
    c.canvas.resize(c.canvas.size() + std::size_t(canvas_gap), poison);
    offset += length + canvas_gap;
  }
  return c;
}

// Highest first with NaN last; for keys without NaN exactly the decoder's `>`.
bool key_greater(float a, float b) {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return a > b;
}

// run_confidence_block's selection, with the given Gumbel noise per candidate.
void reference_select(const selection_case& c, const selection_options& o, std::int32_t max_candidates,
                      const std::vector<float>& gumbel, std::vector<std::int32_t>& canvas,
                      std::vector<std::int32_t>& committed) {
  struct candidate {
    std::int32_t position, token;
    float score, order_key;
  };
  canvas = c.canvas;
  committed.assign(c.sequences.size(), 0);
  std::vector<candidate> candidates;
  std::vector<float> sorted_scores;
  for (std::size_t s = 0; s < c.sequences.size(); ++s) {
    const selection_sequence& q = c.sequences[s];
    if (q.candidate_count < 0 || q.candidate_count > max_candidates) {
      committed[s] = -1;
      continue;
    }
    candidates.clear();
    for (std::int32_t i = 0; i < q.candidate_count; ++i) {
      const std::size_t k = std::size_t(q.candidate_begin + i);
      float key = c.confidence[k];
      if (o.rule.kind == selection_kind::stochastic) key = c.confidence[k] / o.rule.alg_temp + gumbel[k];
      candidates.push_back({c.positions[k], c.tokens[k], c.confidence[k], key});
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const candidate& a, const candidate& b) { return key_greater(a.order_key, b.order_key); });
    sorted_scores.clear();
    for (const candidate& k : candidates) sorted_scores.push_back(k.score);
    const std::int32_t m = std::int32_t(candidates.size());
    const std::int32_t scheduled = o.schedule.count(q.block_step, q.steps, q.initial_masks, m);
    const std::int32_t take = o.rule.commit_count(sorted_scores.data(), m, scheduled, o.metric);
    for (std::int32_t i = 0; i < take; ++i)
      canvas[std::size_t(q.canvas_offset + candidates[std::size_t(i)].position)] = candidates[std::size_t(i)].token;
    committed[s] = take;
  }
}

__global__ void gumbel_kernel(counter_rng rng, const selection_sequence* sequences, const std::int32_t* positions,
                              float* out) {
  const selection_sequence q = sequences[blockIdx.x];
  if (q.candidate_count <= 0) return;
  for (std::int32_t i = std::int32_t(threadIdx.x); i < q.candidate_count; i += std::int32_t(blockDim.x)) {
    const std::int32_t k = q.candidate_begin + i;
    out[k] = rng.gumbel(random_purpose::selection, q.id, q.rng_step, std::uint32_t(positions[k]), 0);
  }
}

// The device's Gumbel noise for every candidate (checked against the host's to 1e-5).
void device_gumbel(const selection_case& c, const selection_options& o, const device_array<selection_sequence>& seqs,
                   const device_array<std::int32_t>& positions, std::vector<float>& out) {
  device_array<float> noise;
  UNMASK_CUDA_OK(noise.allocate(c.positions.size()));
  UNMASK_CUDA_OK(noise.poison());
  gumbel_kernel<<<unsigned(c.sequences.size()), 128>>>(o.rng, seqs.data, positions.data, noise.data);
  UNMASK_CUDA_OK(cudaGetLastError());
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  UNMASK_CUDA_OK(noise.download(out));
  for (const selection_sequence& q : c.sequences)
    for (std::int32_t i = 0; i < q.candidate_count; ++i) {
      const std::size_t k = std::size_t(q.candidate_begin + i);
      const float host = o.rng.gumbel(random_purpose::selection, q.id, q.rng_step, std::uint32_t(c.positions[k]), 0);
      ASSERT_NEAR(out[k], host, 1e-5f + 1e-6f * std::fabs(host)) << "candidate " << k;
    }
}

// A case's arrays on the device (canvas and committed are uploaded per run).
struct device_case {
  device_array<selection_sequence> seqs;
  device_array<std::int32_t> positions, tokens, canvas, committed;
  device_array<float> confidence;
};

void upload_case(const selection_case& c, device_case& d) {
  UNMASK_CUDA_OK(d.seqs.upload(c.sequences));
  UNMASK_CUDA_OK(d.positions.upload(c.positions));
  UNMASK_CUDA_OK(d.tokens.upload(c.tokens));
  UNMASK_CUDA_OK(d.confidence.upload(c.confidence));
}

// Runs select_and_commit on the case (once per max_candidates) and compares
// canvas and counts with the reference.
void check_case(const selection_case& c, const selection_options& o, const std::vector<std::int32_t>& bounds,
                const std::string& label) {
  SCOPED_TRACE(label);
  device_case d;
  upload_case(c, d);
  if (::testing::Test::HasFatalFailure()) return;
  auto& [seqs, positions, tokens, canvas, committed, confidence] = d;
  std::vector<float> gumbel(c.positions.size(), 0.0f);
  if (o.rule.kind == selection_kind::stochastic) {
    device_gumbel(c, o, seqs, positions, gumbel);
    if (::testing::Test::HasFatalFailure()) return;
  }
  cudaStream_t stream;
  UNMASK_CUDA_OK(cudaStreamCreate(&stream));
  for (std::int32_t bound : bounds) {
    SCOPED_TRACE("max_candidates " + std::to_string(bound));
    UNMASK_CUDA_OK(canvas.upload(c.canvas));
    UNMASK_CUDA_OK(committed.upload(std::vector<std::int32_t>(c.sequences.size(), -99)));
    UNMASK_CUDA_OK(cuda::select_and_commit(seqs.data, std::int32_t(c.sequences.size()), bound, positions.data,
                                           tokens.data, confidence.data, o, canvas.data, committed.data, stream));
    UNMASK_CUDA_OK(cudaStreamSynchronize(stream));
    std::vector<std::int32_t> got_canvas, got_committed, want_canvas, want_committed;
    UNMASK_CUDA_OK(canvas.download(got_canvas));
    UNMASK_CUDA_OK(committed.download(got_committed));
    reference_select(c, o, bound, gumbel, want_canvas, want_committed);
    EXPECT_EQ(got_committed, want_committed);
    ASSERT_EQ(got_canvas.size(), want_canvas.size());
    std::size_t wrong = 0, first = 0;
    for (std::size_t i = 0; i < want_canvas.size(); ++i)
      if (got_canvas[i] != want_canvas[i] && wrong++ == 0) first = i;
    EXPECT_EQ(wrong, 0u) << "first differing canvas cell " << first << ": " << got_canvas[first] << " vs "
                         << want_canvas[first];
  }
  UNMASK_CUDA_OK(cudaStreamDestroy(stream));
}

selection_rule rule_for(selection_kind kind, confidence_metric metric) {
  const bool entropy = metric == confidence_metric::neg_entropy;
  switch (kind) {
    case selection_kind::threshold: return selection_rule::fast_dllm_threshold(entropy ? -0.05f : 0.9f);
    case selection_kind::threshold_dinfer: return selection_rule::dinfer_threshold(entropy ? -0.05f : 0.9f);
    case selection_kind::factor: return selection_rule::fast_dllm_factor(1.0f);
    case selection_kind::entropy_bounded: return selection_rule::entropy_bounded(0.1f);
    case selection_kind::stochastic: return selection_rule::dream_alg_temp(0.5f);
    default: return selection_rule::top_k();
  }
}

// 0, 1, 7, 32, 200 and 1000 candidates at first, middle and last block steps.
const std::vector<sequence_spec> mixed_sequences = {
    {1, 0, 8, 32},  {7, 3, 8, 32},   {0, 2, 8, 32},     {32, 2, 4, 32},
    {200, 5, 16, 512}, {1000, 1, 8, 1024}, {200, 15, 16, 256}, {7, 0, 32, 7},
};

// ---- device tests -------------------------------------------------------------

TEST(CudaSelection, EveryRuleMetricAndScheduleMatchesTheHost) {
  UNMASK_REQUIRE_DEVICE();
  std::uint32_t seed = 1;
  for (const count_schedule_kind schedule : {count_schedule_kind::llada_even, count_schedule_kind::dream})
    for (const confidence_metric metric : tested_metrics)
      for (const selection_kind kind : all_kinds)
        for (const bool ties : {false, true}) {
          selection_options o;
          o.rule = rule_for(kind, metric);
          o.schedule = count_schedule{schedule, 1e-3f};
          o.metric = metric;
          o.rng = counter_rng{0x5eed1234abcdull + seed};
          const selection_case c = make_case(mixed_sequences, metric, ties, seed++);
          check_case(c, o, {1000, 2048, cuda::selection_max_candidates},
                     std::string(kind_name(kind)) + " " + to_string(metric) +
                         (schedule == count_schedule_kind::dream ? " dream" : " llada") + (ties ? " ties" : ""));
          if (::testing::Test::HasFatalFailure()) return;
        }
}

TEST(CudaSelection, SmallInstancesMatchTheHost) {
  UNMASK_REQUIRE_DEVICE();
  const std::vector<sequence_spec> small = {{0, 0, 4, 16}, {1, 3, 4, 4},  {7, 1, 4, 16},
                                            {32, 0, 2, 64}, {100, 1, 8, 128}, {128, 0, 4, 128}};
  std::uint32_t seed = 100;
  for (const selection_kind kind : all_kinds)
    for (const bool ties : {false, true}) {
      selection_options o;
      o.rule = rule_for(kind, confidence_metric::max_prob);
      o.rng = counter_rng{seed};
      const selection_case c = make_case(small, confidence_metric::max_prob, ties, seed++);
      check_case(c, o, {128, 300, 2048}, std::string(kind_name(kind)) + (ties ? " ties" : ""));
      if (::testing::Test::HasFatalFailure()) return;
    }
}

TEST(CudaSelection, AllTiedConfidencesCommitTheEarliestPositions) {
  UNMASK_REQUIRE_DEVICE();
  // One level everywhere: top-k must take the first k listed positions.
  selection_case c = make_case({{1000, 0, 8, 1000}, {300, 2, 8, 600}, {33, 0, 1, 33}}, confidence_metric::max_prob,
                               false, 5);
  std::fill(c.confidence.begin(), c.confidence.end(), 0.75f);
  selection_options o;
  check_case(c, o, {1000, 2048}, "one level");
  // And the reference agrees with "the first k": the first sequence commits 125 of 1000.
  std::vector<std::int32_t> canvas, committed;
  reference_select(c, o, 1000, std::vector<float>(c.positions.size(), 0.0f), canvas, committed);
  EXPECT_EQ(committed[0], 125);
  for (std::int32_t i = 0; i < 1000; ++i)
    EXPECT_EQ(canvas[std::size_t(c.sequences[0].canvas_offset + c.positions[std::size_t(i)])] != mask_id, i < 125);
}

TEST(CudaSelection, NanConfidencesSortLast) {
  UNMASK_REQUIRE_DEVICE();
  // 50 candidates, 10 of them NaN (both signs); top-k takes 40 (llada_even:
  // 80 initial masks over 2 steps), which must be exactly the numbers.
  selection_case c = make_case({{50, 0, 2, 80}, {20, 0, 4, 20}}, confidence_metric::max_prob, false, 9);
  for (int i = 0; i < 10; ++i)
    c.confidence[std::size_t(i * 5 + 1)] = i % 2 ? NAN : bits_float(0xffc00000u);
  c.confidence[52] = NAN;  // second sequence: one NaN among 20
  selection_options o;
  check_case(c, o, {50}, "top_k");
  std::vector<std::int32_t> canvas, committed;
  reference_select(c, o, 50, std::vector<float>(c.positions.size(), 0.0f), canvas, committed);
  ASSERT_EQ(committed[0], 40);
  for (std::int32_t i = 0; i < 50; ++i)
    EXPECT_EQ(canvas[std::size_t(c.sequences[0].canvas_offset + c.positions[std::size_t(i)])] != mask_id,
              !std::isnan(c.confidence[std::size_t(i)]));
  for (const selection_kind kind : all_kinds) {
    o.rule = rule_for(kind, confidence_metric::max_prob);
    check_case(c, o, {64}, kind_name(kind));
  }
}

TEST(CudaSelection, BrokenCountsAreReportedAndLeftAlone) {
  UNMASK_REQUIRE_DEVICE();
  selection_case c = make_case({{5, 0, 2, 10}, {40, 0, 2, 40}, {3, 1, 2, 3}, {200, 0, 4, 200}}, confidence_metric::max_prob,
                               false, 11);
  c.sequences[2].candidate_count = -3;  // its candidates stay in the arrays, unread
  selection_options o;
  // 32: the 40 (within the 128 instance) and 200 exceed the bound; 100: only the 200 does.
  check_case(c, o, {32, 100}, "bounds");
  std::vector<std::int32_t> canvas, committed;
  reference_select(c, o, 32, std::vector<float>(c.positions.size(), 0.0f), canvas, committed);
  EXPECT_EQ(committed, (std::vector<std::int32_t>{5, -1, -1, -1}));
}

using test::least_confident_first;  // a user's rule with its own order key

// The kernel instantiated for the options' types against the CPU's commit_selection.
template <class Selection, class Schedule>
void check_user_policy(const selection_case& c, const basic_selection_options<Selection, Schedule>& o,
                       std::int32_t bound, const std::string& label) {
  SCOPED_TRACE(label);
  device_case d;
  upload_case(c, d);
  if (::testing::Test::HasFatalFailure()) return;
  auto& [seqs, positions, tokens, canvas, committed, confidence] = d;
  UNMASK_CUDA_OK(canvas.upload(c.canvas));
  UNMASK_CUDA_OK(committed.upload(std::vector<std::int32_t>(c.sequences.size(), -99)));
  UNMASK_CUDA_OK(cuda::select_and_commit(seqs.data, std::int32_t(c.sequences.size()), bound, positions.data,
                                         tokens.data, confidence.data, o, canvas.data, committed.data, nullptr));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<std::int32_t> got_canvas, got_committed;
  UNMASK_CUDA_OK(canvas.download(got_canvas));
  UNMASK_CUDA_OK(committed.download(got_committed));
  std::vector<std::int32_t> want_canvas = c.canvas, want_committed;
  for (const selection_sequence& q : c.sequences)
    want_committed.push_back(commit_selection(q, c.positions.data(), c.tokens.data(), c.confidence.data(), o,
                                              want_canvas.data()));
  EXPECT_EQ(got_committed, want_committed);
  EXPECT_EQ(got_canvas, want_canvas);
}

TEST(CudaSelection, UserRulesAndSchedulesMatchTheCpu) {
  UNMASK_REQUIRE_DEVICE();
  const std::vector<sequence_spec> specs = {{0, 0, 4, 16}, {1, 3, 4, 4}, {7, 1, 4, 16}, {32, 0, 2, 64}, {300, 1, 8, 400}};
  for (const bool ties : {false, true}) {
    const selection_case c = make_case(specs, confidence_metric::max_prob, ties, ties ? 21u : 22u);
    const std::string suffix = ties ? " ties" : "";
    check_user_policy(c, basic_selection_options<example::margin_gap_rule, count_schedule>{{0.05f}, {}, {}, {}}, 512,
                      "margin_gap_rule" + suffix);
    check_user_policy(c, basic_selection_options<selection_rule, example::halving_schedule>{}, 512,
                      "halving_schedule" + suffix);
    check_user_policy(c, basic_selection_options<least_confident_first, example::halving_schedule>{}, 300,
                      "least_confident_first" + suffix);
  }
}

}  // namespace
}  // namespace unmask
