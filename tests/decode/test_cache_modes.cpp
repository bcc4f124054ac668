// K/V caching in the diffusion loop. Exact modes must reproduce uncached
// decoding bit for bit: block-causal caching on a block-causal model, and
// prefix / dual caching refreshed every step. The approximate modes (prefix,
// dual refreshed at block starts) are measured: how many tokens differ from
// uncached decoding over a fixed prompt set.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "support/tiny_model.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/diffusion_decoder.hpp"

namespace unmask {
namespace {

using test::tiny;  // (tests/support/tiny_model.hpp)

const std::vector<decode_request> cache_requests = {{{5, 17, 42, 3}, 0}, {{64, 12, 7, 80, 81, 1, 2}, 1}, {{9}, 2}};

struct traced_output {
  decode_output out;
  std::vector<std::vector<std::int32_t>> trace;  // committed positions per step, all sequences
};

traced_output decode(const diffusion_settings& s, const std::vector<decode_request>& r = cache_requests) {
  diffusion_decoder<cpu_backend> decoder(tiny(), s);
  traced_output t;
  t.out = decoder.generate(r, [&](const decode_event& e) { t.trace.push_back(*e.committed_positions); });
  return t;
}

void expect_identical(const traced_output& a, const traced_output& b, const std::string& what) {
  ASSERT_EQ(a.out.sequences.size(), b.out.sequences.size());
  for (std::size_t s = 0; s < a.out.sequences.size(); ++s)
    EXPECT_EQ(a.out.sequences[s].canvas, b.out.sequences[s].canvas) << what << ", sequence " << s;
  EXPECT_EQ(a.trace, b.trace) << what;
  EXPECT_EQ(a.out.forwards, b.out.forwards) << what;
}

std::vector<diffusion_settings> policy_variants() {
  std::vector<diffusion_settings> out;
  diffusion_settings s;
  s.layout = {32, 8, 16};
  s.sampling.temperature = 1.0f;  // varied tokens: sampled outputs expose any change in the logits
  s.seed = 21;
  out.push_back(s);
  s.selection = selection_rule::fast_dllm_threshold(0.09f);
  out.push_back(s);
  s.selection = selection_rule::top_k();
  s.cfg_scale = 1.0f;
  out.push_back(s);
  return out;
}

TEST(CacheModes, BlockCausalCacheIsExact) {
  for (diffusion_settings s : policy_variants()) {
    s.attention = attention_mask::block_causal(8);
    const traced_output reference = decode(s);
    s.cache.mode = cache_mode::block_causal;
    expect_identical(reference, decode(s), "block-causal cache");
  }
}

TEST(CacheModes, BlockCausalCachedLogitsEqualUncached) {
  // Forward level: the current block fed against cached K/V of the prompt and
  // finished blocks gives the same bits as the full block-causal pass.
  const transformer_model& model = tiny();
  std::vector<std::int32_t> canvas = {5, 17, 42, 3, 10, 11, 12, 13, 14, 15, 16, 17, 99, 99, 99, 99, 99, 99, 99, 99, 99};
  const std::int32_t origin = 5, length = std::int32_t(canvas.size());
  const attention_mask mask = attention_mask::block_causal(8);
  transformer_forward<cpu_backend> forward(model);
  std::vector<float> full(canvas.size() * 100);
  forward({canvas.data(), 1, length, nullptr, nullptr, nullptr, nullptr, &origin}, mask, full.data());
  kv_cache<cpu_backend> cache(model.config(), 1, 32);
  std::vector<float> first(13 * 100), block(8 * 100);
  const std::int32_t prefix_len = 13, zero = 0;
  forward({canvas.data(), 1, prefix_len, nullptr, &zero, nullptr, nullptr, &origin}, mask, first.data(), &cache);
  const std::int32_t offset = 13, block_len = 8;
  forward({canvas.data() + 13, 1, block_len, nullptr, &offset, nullptr, nullptr, &origin}, mask, block.data(), &cache);
  for (std::size_t i = 0; i < block.size(); ++i) ASSERT_EQ(block[i], full[13 * 100 + i]) << i;
  for (std::size_t i = 0; i < first.size(); ++i) ASSERT_EQ(first[i], full[i]) << i;
}

TEST(CacheModes, ShiftedLogitsThroughEveryCacheMode) {
  // Dream's shift: a cached step feeds the block from the row before it, so
  // the block's first position is still predicted from the position before
  // it; the exact modes stay exact (the block-causal cache, and prefix / dual
  // caches refreshed every step).
  const transformer_model dream = transformer_model::load(test::data_dir() + "/tiny_dream");
  auto run = [&](const diffusion_settings& s) {
    diffusion_decoder<cpu_backend> decoder(dream, s);
    traced_output t;
    t.out = decoder.generate(cache_requests, [&](const decode_event& e) { t.trace.push_back(*e.committed_positions); });
    return t;
  };
  for (diffusion_settings s : policy_variants()) {
    diffusion_settings b = s;
    b.attention = attention_mask::block_causal(8);
    const traced_output block_reference = run(b);
    b.cache.mode = cache_mode::block_causal;
    expect_identical(block_reference, run(b), "Dream, block-causal cache");
    const traced_output reference = run(s);
    for (cache_mode mode : {cache_mode::prefix, cache_mode::dual}) {
      s.cache = {mode, 1};
      expect_identical(reference, run(s), std::string("Dream, ") + to_string(mode) + " refreshed every step");
    }
  }
}

TEST(CacheModes, PrefixAndDualRefreshedEveryStepAreExact) {
  for (diffusion_settings s : policy_variants()) {
    const traced_output reference = decode(s);
    for (cache_mode mode : {cache_mode::prefix, cache_mode::dual}) {
      s.cache = {mode, 1};
      expect_identical(reference, decode(s), std::string(to_string(mode)) + " refreshed every step");
    }
  }
}

TEST(CacheModes, ApproximateModesAgreementIsMeasured) {
  // Prefix and dual caching refreshed only at block starts: record how many
  // generated tokens differ from uncached decoding (reported, not bounded).
  diffusion_settings s = policy_variants()[0];
  const traced_output reference = decode(s);
  for (cache_mode mode : {cache_mode::prefix, cache_mode::dual}) {
    for (std::int32_t refresh : {0, 2}) {
      s.cache = {mode, refresh};
      const traced_output cached = decode(s);
      std::int64_t differing = 0, total = 0;
      for (std::size_t q = 0; q < cache_requests.size(); ++q) {
        const auto& a = reference.out.sequences[q].canvas;
        const auto& b = cached.out.sequences[q].canvas;
        for (std::size_t p = cache_requests[q].prompt.size(); p < a.size(); ++p, ++total) differing += a[p] != b[p];
      }
      std::printf("  %s cache, refresh %d: %lld of %lld tokens differ from no cache (agreement %.1f%%)\n",
                  to_string(mode), refresh, (long long)differing, (long long)total,
                  100.0 * double(total - differing) / double(total));
      RecordProperty(std::string(to_string(mode)) + "_refresh" + std::to_string(refresh) + "_differing",
                     std::to_string(differing));
      EXPECT_EQ(cached.out.forwards, reference.out.forwards);  // same schedule, same number of steps
      for (const auto& seq : cached.out.sequences)
        EXPECT_EQ(std::count(seq.canvas.begin(), seq.canvas.end(), 99), 0);
    }
  }
}

TEST(CacheModesBadInput, InvalidCombinations) {
  using test::expect_error;
  diffusion_settings s;
  s.layout = {32, 8, 16};
  s.cache.mode = cache_mode::block_causal;
  expect_error<argument_error>([&] { diffusion_decoder<cpu_backend>(tiny(), s); }, {"needs block-causal attention"});
  s.attention = attention_mask::block_causal(4);
  expect_error<argument_error>([&] { diffusion_decoder<cpu_backend>(tiny(), s); }, {"block size block_length (8)"});
  s = {};
  s.layout = {32, 8, 16};
  s.mode = decode_mode::ancestral;
  s.cache.mode = cache_mode::prefix;
  expect_error<argument_error>([&] { diffusion_decoder<cpu_backend>(tiny(), s); }, {"not to ancestral sampling"});
  s = {};
  s.cache.refresh_interval = -1;
  expect_error<argument_error>([&] { diffusion_decoder<cpu_backend>(tiny(), s); }, {"refresh interval must be >= 0"});
  expect_error<argument_error>([] { parse_cache_mode("full"); }, {"unknown cache mode 'full'"});
}

}  // namespace
}  // namespace unmask
