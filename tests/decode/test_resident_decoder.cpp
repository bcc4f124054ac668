// Resident decoding (unmask/decode/resident_decoder.hpp), whose steps never
// leave the backend, must decode exactly what diffusion_decoder decodes: on
// the CPU backend (batch-invariant GEMMs) the canvases, NFE, per-sequence
// forwards and committed counts are equal for every selection rule, count
// schedule, confidence metric, sampling setting and attention mask it
// supports, over sequences with different prompt lengths (padding), several
// blocks, and an end-of-sequence stop; with each K/V cache mode (prefix and
// dual, refreshed only at a block's start or every few steps, and the
// block-causal cache) as with none, on the tiny LLaDA-style model and on
// Dream's shifted logits. Settings it does not support are refused with a
// message naming the alternative.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support/decode_cases.hpp"
#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "support/tiny_model.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/resident_decoder.hpp"

namespace unmask {
namespace {

using test::expect_error;

using test::tiny;  // (tests/support/tiny_model.hpp)

const std::vector<decode_request> resident_requests = {
    {{5, 17, 42, 3}, 0}, {{64, 12, 7, 80, 81, 1, 2}, 1}, {{9}, 2}, {{33, 34, 35, 36, 37, 38, 39, 40, 41}, 7}};

using resident_case = test::policy_case;

// The confidence policies (tests/support/decode_cases.hpp), block-causal
// attention, one token a step and an end-of-sequence stop.
std::vector<resident_case> resident_cases() {
  std::vector<resident_case> out = test::confidence_policy_cases();
  auto base = test::short_layout;
  diffusion_settings s = base();
  s.attention = attention_mask::block_causal(8);
  out.push_back({"block_causal", s});
  s = base();
  s.layout = {24, 8, 24};
  out.push_back({"one_token_per_step", s});
  s = base();
  s.stop_at_eos = true;
  s.eos_token_id = 68;  // a token the random model proposes often
  out.push_back({"eos_stop", s});
  return out;
}

class ResidentDecoder : public ::testing::TestWithParam<resident_case> {};

TEST_P(ResidentDecoder, EqualsDiffusionDecoder) {
  const diffusion_settings& s = GetParam().settings;
  const decode_output expected = diffusion_decoder<cpu_backend>(tiny(), s).generate(resident_requests);
  resident_decoder<cpu_backend> resident(tiny(), s);
  for (int run = 0; run < 2; ++run) {  // the decoder is reusable
    const decode_output got = resident.generate(resident_requests);
    ASSERT_EQ(got.sequences.size(), expected.sequences.size());
    for (std::size_t q = 0; q < got.sequences.size(); ++q) {
      EXPECT_EQ(got.sequences[q].canvas, expected.sequences[q].canvas) << "sequence " << q;
      EXPECT_EQ(got.sequences[q].forwards, expected.sequences[q].forwards) << "sequence " << q;
      EXPECT_EQ(got.sequences[q].committed, expected.sequences[q].committed) << "sequence " << q;
      EXPECT_EQ(got.sequences[q].stopped_at_eos, expected.sequences[q].stopped_at_eos) << "sequence " << q;
    }
    EXPECT_EQ(got.forwards, expected.forwards);
    EXPECT_EQ(got.committed, expected.committed);
  }
  if (s.stop_at_eos) {
    bool stopped = false;
    for (const sequence_output& q : expected.sequences) stopped |= q.stopped_at_eos;
    EXPECT_TRUE(stopped) << "no sequence met the end-of-sequence token: the case tests nothing";
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, ResidentDecoder, ::testing::ValuesIn(resident_cases()),
                         [](const auto& param) { return param.param.name; });

TEST(ResidentDecoder, ShiftedLogitsEqualTheStepwiseLoop) {
  // Dream (Qwen2 blocks with biases, shifted logits) on the resident path.
  const transformer_model dream = transformer_model::load(test::data_dir() + "/tiny_dream");
  for (const resident_case& c : test::confidence_policy_cases()) {
    const decode_output expected = diffusion_decoder<cpu_backend>(dream, c.settings).generate(resident_requests);
    const decode_output got = resident_decoder<cpu_backend>(dream, c.settings).generate(resident_requests);
    ASSERT_EQ(got.sequences.size(), expected.sequences.size());
    for (std::size_t q = 0; q < got.sequences.size(); ++q)
      EXPECT_EQ(got.sequences[q].canvas, expected.sequences[q].canvas) << c.name << ", sequence " << q;
    EXPECT_EQ(got.forwards, expected.forwards) << c.name;
  }
}

// Cached decoding: every cache mode over the confidence policies, refresh
// intervals, a block-causal cache, an end-of-sequence stop.
std::vector<resident_case> cached_cases() {
  std::vector<resident_case> out;
  for (const resident_case& c : test::confidence_policy_cases())
    for (const cache_mode mode : {cache_mode::prefix, cache_mode::dual}) {
      diffusion_settings s = c.settings;
      s.cache.mode = mode;
      out.push_back({c.name + "_" + to_string(mode), s});
    }
  diffusion_settings s = test::short_layout();
  s.cache = {cache_mode::dual, 3};
  out.push_back({"dual_refresh_3", s});
  s.cache = {cache_mode::prefix, 2};
  out.push_back({"prefix_refresh_2", s});
  s = test::short_layout();
  s.attention = attention_mask::block_causal(s.layout.block_length);
  s.cache.mode = cache_mode::block_causal;
  out.push_back({"block_causal_cache", s});
  s.selection = selection_rule::fast_dllm_threshold(0.09f);
  out.push_back({"block_causal_cache_threshold", s});
  // A sequence that stops leaves the batch and the others keep their cache
  // slots: sampled, with stop tokens that end some sequences in the first
  // block and not others (80 and 97 for the tiny model, 17 for Dream).
  s.selection = {};
  s.sampling.temperature = 1.0f;
  s.seed = 7;
  s.stop_at_eos = true;
  s.eos_token_id = 80;
  s.stop.add_token_ids({17, 97});
  out.push_back({"block_causal_cache_eos_stop", s});
  s.attention = attention_mask::full();
  s.cache.mode = cache_mode::dual;
  out.push_back({"dual_eos_stop", s});
  return out;
}

void expect_same_decoding(const decode_output& got, const decode_output& expected, const std::string& what) {
  ASSERT_EQ(got.sequences.size(), expected.sequences.size()) << what;
  for (std::size_t q = 0; q < got.sequences.size(); ++q) {
    EXPECT_EQ(got.sequences[q].canvas, expected.sequences[q].canvas) << what << ", sequence " << q;
    EXPECT_EQ(got.sequences[q].forwards, expected.sequences[q].forwards) << what << ", sequence " << q;
    EXPECT_EQ(got.sequences[q].committed, expected.sequences[q].committed) << what << ", sequence " << q;
    EXPECT_EQ(got.sequences[q].stopped_at_eos, expected.sequences[q].stopped_at_eos) << what << ", sequence " << q;
  }
  EXPECT_EQ(got.forwards, expected.forwards) << what;
  EXPECT_EQ(got.committed, expected.committed) << what;
}

class ResidentCachedDecoder : public ::testing::TestWithParam<resident_case> {};

TEST_P(ResidentCachedDecoder, EqualsTheStepwiseCachedLoop) {
  static const transformer_model dream = transformer_model::load(test::data_dir() + "/tiny_dream");
  const diffusion_settings& s = GetParam().settings;
  for (const transformer_model* model : {&tiny(), &dream}) {
    const std::string what = model == &dream ? "Dream" : "tiny";
    const decode_output expected = diffusion_decoder<cpu_backend>(*model, s).generate(resident_requests);
    resident_decoder<cpu_backend> resident(*model, s);
    for (int run = 0; run < 2; ++run)  // reusable: the cache is kept and rewritten before it is read
      expect_same_decoding(resident.generate(resident_requests), expected, what + " run " + std::to_string(run));
    if (s.stop_at_eos) {
      std::int64_t most = 0;  // a sequence stopped before another's last block: the batch shrank
      for (const sequence_output& q : expected.sequences) most = std::max(most, q.forwards);
      bool stopped_early = false;
      for (const sequence_output& q : expected.sequences) stopped_early |= q.stopped_at_eos && q.forwards < most;
      EXPECT_TRUE(stopped_early) << what << ": no sequence met the end-of-sequence token";
    }
    // A batch of fewer, shorter requests after the longer one reuses the larger cache.
    const std::vector<decode_request> fewer(resident_requests.begin() + 2, resident_requests.end());
    expect_same_decoding(resident.generate(fewer), diffusion_decoder<cpu_backend>(*model, s).generate(fewer),
                         what + " fewer requests");
  }
}

INSTANTIATE_TEST_SUITE_P(CacheModes, ResidentCachedDecoder, ::testing::ValuesIn(cached_cases()),
                         [](const auto& param) { return param.param.name; });

TEST(ResidentCachedDecoder, CachedStepsRunTheCachedSlice) {
  // Prefix and dual caches are approximate: if the resident loop fed the
  // whole canvas every step it would decode what no cache decodes. At least
  // one policy must tell the two apart, on the resident path as on the stepwise one.
  int differing = 0;
  for (const resident_case& c : test::confidence_policy_cases()) {
    const decode_output uncached = resident_decoder<cpu_backend>(tiny(), c.settings).generate(resident_requests);
    for (const cache_mode mode : {cache_mode::prefix, cache_mode::dual}) {
      diffusion_settings s = c.settings;
      s.cache.mode = mode;
      const decode_output cached = resident_decoder<cpu_backend>(tiny(), s).generate(resident_requests);
      for (std::size_t q = 0; q < cached.sequences.size(); ++q)
        differing += cached.sequences[q].canvas != uncached.sequences[q].canvas;
    }
  }
  EXPECT_GT(differing, 0);
}

TEST(ResidentDecoderSettings, RefusesWhatItDoesNotRun) {
  diffusion_settings s;
  s.layout = {24, 8, 12};
  s.mode = decode_mode::ancestral;
  expect_error<argument_error>([&] { resident_decoder<cpu_backend>(tiny(), s); }, {"use diffusion_decoder for ancestral"});
  s.mode = decode_mode::confidence;
  s.cfg_scale = 1.0f;
  expect_error<argument_error>([&] { resident_decoder<cpu_backend>(tiny(), s); }, {"without guidance"});
  s.cfg_scale = 0.0f;
  resident_decoder<cpu_backend> ok(tiny(), s);
  expect_error<argument_error>([&] { ok.generate({}); }, {"no sequences"});
  expect_error<argument_error>([&] { ok.generate({{{4096 * 2}, 0}}); }, {"outside the vocabulary"});
}

}  // namespace
}  // namespace unmask
