// Properties every decode must have, whatever the policy: all masks filled;
// committed tokens never change (except that ReMDM may remask them); each
// step commits what the schedule says; threshold and factor rules commit at
// least one token a step; nothing past the current block is committed; and
// a sequence's output does not depend on its batch (size, order) for a seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "support/decode_cases.hpp"
#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "support/tiny_model.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/ar_decoder.hpp"
#include "unmask/decode/diffusion_decoder.hpp"

namespace unmask {
namespace {

using test::tiny;  // (tests/support/tiny_model.hpp)
constexpr std::int32_t property_mask = 99;

std::vector<decode_request> prompts() {
  return {{{5, 17, 42, 3}, 0}, {{64, 12, 7, 80, 81, 1, 2}, 1}, {{9}, 2}};
}

using test::policy_case;

// The confidence policies (tests/support/decode_cases.hpp), guidance and ancestral sampling.
std::vector<policy_case> policies() {
  std::vector<policy_case> out = test::confidence_policy_cases();
  auto base = test::short_layout;
  diffusion_settings s = base();
  s.cfg_scale = 1.0f;
  out.push_back({"cfg", s});
  s = base();
  s.mode = decode_mode::ancestral;
  s.sampling.temperature = 1.0f;
  s.seed = 5;
  out.push_back({"mdlm_ancestral", s});
  s.noise.kind = noise_kind::cosine;
  out.push_back({"mdlm_cosine", s});
  s.noise.kind = noise_kind::log_linear;
  s.remasking.strategy = remask_strategy::cap;
  s.remasking.eta = 0.2f;
  out.push_back({"remdm_cap", s});
  s.remasking.strategy = remask_strategy::rescale;
  out.push_back({"remdm_rescale", s});
  s.remasking.strategy = remask_strategy::conf;
  out.push_back({"remdm_conf", s});
  s.remasking.strategy = remask_strategy::loop;
  out.push_back({"remdm_loop", s});
  return out;
}

class DecodeProperties : public ::testing::TestWithParam<policy_case> {};

TEST_P(DecodeProperties, Invariants) {
  const diffusion_settings& settings = GetParam().settings;
  const bool remasks = settings.remasking.strategy != remask_strategy::none;
  diffusion_decoder<cpu_backend> decoder(tiny(), settings);
  const auto requests = prompts();
  std::vector<std::vector<std::int32_t>> previous;
  for (const auto& r : requests) {
    previous.push_back(r.prompt);
    previous.back().resize(r.prompt.size() + std::size_t(settings.layout.gen_length), property_mask);
  }
  std::vector<std::map<std::int32_t, std::int32_t>> steps_per_block(requests.size());
  int remasked = 0;
  const decode_output out = decoder.generate(requests, [&](const decode_event& e) {
    const auto& before = previous[e.sequence];
    const auto& after = *e.canvas;
    const std::int32_t prompt = std::int32_t(requests[e.sequence].prompt.size());
    const std::int32_t begin = prompt + e.block * settings.layout.block_length;
    const std::int32_t end = begin + settings.layout.block_length;
    std::int32_t newly = 0;
    for (std::int32_t p = 0; p < std::int32_t(after.size()); ++p) {
      if (before[std::size_t(p)] == after[std::size_t(p)]) continue;
      EXPECT_TRUE(p >= begin && p < end) << "position " << p << " outside block " << e.block;
      if (before[std::size_t(p)] == property_mask) {
        ++newly;
        EXPECT_NE(after[std::size_t(p)], property_mask);
      } else {
        EXPECT_TRUE(remasks) << "committed token at " << p << " changed";
        ++remasked;
        EXPECT_EQ(after[std::size_t(p)], property_mask) << "a decoded token may only be remasked";
        EXPECT_GE(p, prompt) << "the prompt is never remasked";
      }
    }
    EXPECT_EQ(newly, std::int32_t(e.committed_positions->size()));
    const auto kind = settings.selection.kind;
    if (settings.mode == decode_mode::confidence &&
        (kind == selection_kind::threshold || kind == selection_kind::threshold_dinfer ||
         kind == selection_kind::factor || kind == selection_kind::entropy_bounded)) {
      EXPECT_GE(newly, 1) << "threshold-style rules commit at least one token per step";
    }
    if (settings.mode == decode_mode::confidence && settings.selection.kind == selection_kind::top_k &&
        settings.schedule.kind == count_schedule_kind::llada_even) {
      // 8 masks per block in 12 / 3 = 4 steps: exactly 2 per step.
      EXPECT_EQ(newly, 2) << "block " << e.block << " step " << e.step;
    }
    ++steps_per_block[e.sequence][e.block];
    previous[e.sequence] = after;
  });
  for (std::size_t s = 0; s < requests.size(); ++s) {
    const auto& canvas = out.sequences[s].canvas;
    EXPECT_EQ(std::count(canvas.begin(), canvas.end(), property_mask), 0) << "masks left in sequence " << s;
    EXPECT_TRUE(std::equal(requests[s].prompt.begin(), requests[s].prompt.end(), canvas.begin())) << "prompt changed";
    if (settings.mode == decode_mode::confidence && settings.selection.uses_schedule()) {
      for (const auto& [block, count] : steps_per_block[s]) EXPECT_EQ(count, 4) << "steps in block " << block;
    }
  }
  EXPECT_GT(out.forwards, 0);
  EXPECT_GE(out.committed, std::int64_t(3 * settings.layout.gen_length));
  if (remasks) {
    EXPECT_GT(remasked, 0) << "ReMDM never remasked a token";
  }
  EXPECT_EQ(out.committed, std::int64_t(3 * settings.layout.gen_length) + remasked);
}

TEST_P(DecodeProperties, BatchAndOrderInvariance) {
  const diffusion_settings& settings = GetParam().settings;
  diffusion_decoder<cpu_backend> decoder(tiny(), settings);
  const auto requests = prompts();
  const decode_output together = decoder.generate(requests);
  std::vector<decode_request> reversed(requests.rbegin(), requests.rend());
  const decode_output backwards = decoder.generate(reversed);
  for (std::size_t s = 0; s < requests.size(); ++s) {
    const decode_output alone = decoder.generate({requests[s]});
    EXPECT_EQ(alone.sequences[0].canvas, together.sequences[s].canvas) << "sequence " << s << " alone vs batch";
    EXPECT_EQ(backwards.sequences[requests.size() - 1 - s].canvas, together.sequences[s].canvas) << "order " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, DecodeProperties, ::testing::ValuesIn(policies()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(DecodeProperties, SamplingDependsOnTheSeedAndTheId) {
  diffusion_settings s;
  s.layout = {24, 24, 24};
  s.sampling.temperature = 1.0f;
  s.seed = 1;
  diffusion_decoder<cpu_backend> a(tiny(), s);
  s.seed = 2;
  diffusion_decoder<cpu_backend> b(tiny(), s);
  const std::vector<decode_request> r = {{{5, 17, 42, 3}, 0}};
  const std::vector<decode_request> other_id = {{{5, 17, 42, 3}, 9}};
  EXPECT_NE(a.generate(r).sequences[0].canvas, b.generate(r).sequences[0].canvas);
  EXPECT_NE(a.generate(r).sequences[0].canvas, a.generate(other_id).sequences[0].canvas);
  EXPECT_EQ(a.generate(r).sequences[0].canvas, a.generate(r).sequences[0].canvas);
}

TEST(DecodeProperties, AncestralReusesTheOutputWhenNothingChanged) {
  // 256 steps for 8 positions: most steps reveal nothing, so the model runs
  // far less often than once per step (MDLM's ddpm_cache).
  diffusion_settings s;
  s.layout = {8, 8, 256};
  s.mode = decode_mode::ancestral;
  s.sampling.temperature = 1.0f;
  diffusion_decoder<cpu_backend> decoder(tiny(), s);
  const decode_output out = decoder.generate({{{5, 17, 42, 3}, 0}});
  EXPECT_LE(out.forwards, 9);  // at most one per revealing step plus the first
  EXPECT_EQ(std::count(out.sequences[0].canvas.begin(), out.sequences[0].canvas.end(), property_mask), 0);
}

TEST(DecodeProperties, StopsAtEndOfSequence) {
  // The tiny model predicts token 68 everywhere; call it end-of-sequence.
  diffusion_settings s;
  s.layout = {32, 8, 16};
  s.stop_at_eos = true;
  s.eos_token_id = 68;
  diffusion_decoder<cpu_backend> decoder(tiny(), s);
  const decode_output out = decoder.generate({{{5, 17, 42, 3}, 0}});
  EXPECT_TRUE(out.sequences[0].stopped_at_eos);
  EXPECT_EQ(out.forwards, 4);  // one block of 4 steps, then done
  const auto& canvas = out.sequences[0].canvas;
  EXPECT_TRUE(std::all_of(canvas.begin() + 12, canvas.end(), [](std::int32_t t) { return t == 68; }));
}

TEST(DecodePropertiesBadInput, BadSettingsAndPrompts) {
  using test::expect_error;
  diffusion_settings s;
  s.layout = {30, 8, 8};
  expect_error<argument_error>([&] { diffusion_decoder<cpu_backend>(tiny(), s); }, {"not a multiple of block_length"});
  s.layout = {32, 8, 6};
  expect_error<argument_error>([&] { diffusion_decoder<cpu_backend>(tiny(), s); }, {"steps 6 is not a multiple"});
  s.layout = {32, 8, 8};
  s.cfg_scale = -1;
  expect_error<argument_error>([&] { diffusion_decoder<cpu_backend>(tiny(), s); }, {"cfg_scale must be >= 0"});
  s.cfg_scale = 0;
  diffusion_decoder<cpu_backend> decoder(tiny(), s);
  expect_error<argument_error>([&] { decoder.generate({{{1, 2, 100}, 0}}); }, {"prompt token 100", "outside the vocabulary"});
  expect_error<argument_error>([&] { decoder.generate({{std::vector<std::int32_t>(40, 1), 0}}); },
                               {"exceeds max_sequence_length 64"});
  expect_error<argument_error>([&] { decoder.generate({}); }, {"no sequences"});
}

}  // namespace
}  // namespace unmask
