// Resident decoding (unmask/decode/resident_decoder.hpp), whose steps never
// leave the backend, must decode exactly what diffusion_decoder decodes: on
// the CPU backend (batch-invariant GEMMs) the canvases, NFE, per-sequence
// forwards and committed counts are equal for every selection rule, count
// schedule, confidence metric, sampling setting and attention mask it
// supports, over sequences with different prompt lengths (padding), several
// blocks, and an end-of-sequence stop. Settings it does not support are
// refused with a message naming the alternative.
#include <gtest/gtest.h>

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

TEST(ResidentDecoderSettings, RefusesWhatItDoesNotRun) {
  diffusion_settings s;
  s.layout = {24, 8, 12};
  s.mode = decode_mode::ancestral;
  expect_error<argument_error>([&] { resident_decoder<cpu_backend>(tiny(), s); }, {"use diffusion_decoder for ancestral"});
  s.mode = decode_mode::confidence;
  s.cache.mode = cache_mode::prefix;
  expect_error<argument_error>([&] { resident_decoder<cpu_backend>(tiny(), s); }, {"without a K/V cache"});
  s.cache.mode = cache_mode::none;
  s.cfg_scale = 1.0f;
  expect_error<argument_error>([&] { resident_decoder<cpu_backend>(tiny(), s); }, {"without guidance"});
  s.cfg_scale = 0.0f;
  resident_decoder<cpu_backend> ok(tiny(), s);
  expect_error<argument_error>([&] { ok.generate({}); }, {"no sequences"});
  expect_error<argument_error>([&] { ok.generate({{{4096 * 2}, 0}}); }, {"outside the vocabulary"});
}

}  // namespace
}  // namespace unmask
