// Logits processors inside the token choice: each reading (choice,
// confidence) is rewritten as the processor says, the result equals
// choose_token on rows edited by hand, LLaDA's two options behave as
// ML-GSAI/LLaDA generate.py writes them, the CPU batch path agrees with the
// reference row by row, and the decoders take the processor from the policy
// and from the settings.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "logit_bias.hpp"
#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "support/tiny_model.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/cpu/choose.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/resident_decoder.hpp"
#include "unmask/policy/logits_processor.hpp"
#include "unmask/policy/sampling.hpp"

namespace unmask {
namespace {

// Halves the choice reading only.
struct halve_choice {
  UNMASK_HOST_DEVICE float choice_logit(float l, std::int32_t, const draw_site&) const { return 0.5f * l; }
};
// Adds the position to token 0's logit, at both readings.
struct position_bias {
  UNMASK_HOST_DEVICE float operator()(float l, std::int32_t v, const draw_site& s) const {
    return v == 0 ? l + float(s.position) : l;
  }
};

TEST(LogitsProcessor, EachReadingIsRewrittenAsDeclared) {
  const draw_site site{1, 2, 3};
  EXPECT_EQ(processed_choice_logit(halve_choice{}, 4.0f, 7, site), 2.0f);
  EXPECT_EQ(processed_confidence_logit(halve_choice{}, 4.0f, 7, site), 4.0f);
  EXPECT_EQ(processed_choice_logit(position_bias{}, 1.0f, 0, site), 4.0f);
  EXPECT_EQ(processed_confidence_logit(position_bias{}, 1.0f, 0, site), 4.0f);
  EXPECT_EQ(processed_choice_logit(no_logits_processor{}, 1.5f, 0, site), 1.5f);
  EXPECT_FALSE(processor_active(no_logits_processor{}));
  EXPECT_TRUE(processor_active(halve_choice{}));
  token_ban_processor bans;
  EXPECT_FALSE(processor_active(bans));
  bans.ban(5).ban_from_confidence(6);
  EXPECT_TRUE(processor_active(bans));
  EXPECT_EQ(processed_choice_logit(bans, 1.0f, 5, site), -INFINITY);
  EXPECT_EQ(processed_confidence_logit(bans, 1.0f, 5, site), -INFINITY);
  EXPECT_EQ(processed_choice_logit(bans, 1.0f, 6, site), 1.0f);
  EXPECT_EQ(processed_confidence_logit(bans, 1.0f, 6, site), -INFINITY);
  EXPECT_EQ(processed_confidence_logit(bans, 1.0f, 7, site), 1.0f);
}

TEST(LogitsProcessor, BansAreCheckedAndBounded) {
  token_ban_processor p;
  for (int i = 0; i < token_ban_processor::capacity; ++i) p.ban(i);
  test::expect_error<argument_error>([&] { p.ban(99); }, {"more than 8 bans"});
  test::expect_error<argument_error>([] { token_ban_processor{}.ban(-2).validate(); }, {"banned token id -2"});
  test::expect_error<argument_error>([] { token_ban_processor{}.ban(40).validate(10); }, {"outside the vocabulary"});
  test::expect_error<argument_error>([] { token_ban_processor::llada(false, true, 3, -1).validate(); },
                                     {"end-of-turn id"});
}

const std::vector<float> row = {0.5f, 3.0f, 1.0f, 2.5f, -1.0f, 0.0f, 2.9f, 0.2f};

// The choice of choose_token on two hand-edited copies: the argmax of
// `choice` (excluding `excluded`) and the probability of it under `raw`.
token_choice by_hand(const std::vector<float>& choice, const std::vector<float>& raw, std::int32_t excluded) {
  std::int32_t best = -1;
  for (std::size_t v = 0; v < choice.size(); ++v)
    if (std::int32_t(v) != excluded && (best < 0 || choice[v] > choice[std::size_t(best)])) best = std::int32_t(v);
  double z = 0;
  for (float l : raw) z += std::exp(double(l));
  return {best, float(std::exp(double(raw[std::size_t(best)])) / z)};
}

TEST(LogitsProcessor, LladaLogitsEosInfNeverChoosesEosAndDropsItFromTheSoftmax) {
  // EOS (1) is the argmax; with logits_eos_inf the runner-up (6) is chosen
  // and its probability is over the logits with EOS at -inf.
  const token_ban_processor p = token_ban_processor::llada(true, false, 1, 3);
  std::vector<float> edited = row;
  edited[1] = -INFINITY;
  const token_choice want = by_hand(edited, edited, -1);
  const token_choice got = choose_token(row.data(), 8, {}, confidence_metric::max_prob, -1, counter_rng{}, {}, p);
  EXPECT_EQ(got.token, 6);
  EXPECT_EQ(got.token, want.token);
  EXPECT_NEAR(got.confidence, want.confidence, 1e-6);
  const token_choice plain = choose_token(row.data(), 8, {}, confidence_metric::max_prob, -1, counter_rng{}, {});
  EXPECT_EQ(plain.token, 1);
}

TEST(LogitsProcessor, LladaConfidenceEosEotInfChangesOnlyTheConfidence) {
  // EOT (1) stays the choice, but its confidence is read with its own logit
  // at -inf: zero. Another EOT id changes the chosen token's confidence only.
  const token_choice eot_chosen = choose_token(row.data(), 8, {}, confidence_metric::max_prob, -1, counter_rng{}, {},
                                               token_ban_processor::llada(false, true, 9, 1));
  EXPECT_EQ(eot_chosen.token, 1);
  EXPECT_EQ(eot_chosen.confidence, 0.0f);
  std::vector<float> raw = row;
  raw[6] = -INFINITY;
  const token_choice want = by_hand(row, raw, -1);
  const token_choice got = choose_token(row.data(), 8, {}, confidence_metric::max_prob, -1, counter_rng{}, {},
                                        token_ban_processor::llada(false, true, 9, 6));
  EXPECT_EQ(got.token, 1);
  EXPECT_NEAR(got.confidence, want.confidence, 1e-6);
  const token_choice plain = choose_token(row.data(), 8, {}, confidence_metric::max_prob, -1, counter_rng{}, {});
  EXPECT_LT(plain.confidence, got.confidence);
}

TEST(LogitsProcessor, EqualsChooseTokenOnEditedRowsWhenSampling) {
  // Sampling, Dream's filters and every metric: a processor rewriting both
  // readings the same way chooses what choose_token chooses on the edited row.
  const std::vector<sampling_settings> settings = {
      {0.0f, 0, 1.0f, false}, {0.7f, 0, 1.0f, false}, {1.3f, 3, 1.0f, true}, {0.9f, 0, 0.8f, true},
      {0.0f, 4, 1.0f, true}};
  const position_bias p;
  for (const sampling_settings& s : settings) {
    for (confidence_metric m : {confidence_metric::max_prob, confidence_metric::margin, confidence_metric::neg_entropy,
                                confidence_metric::random}) {
      for (std::uint32_t position = 0; position < 6; ++position) {
        const draw_site site{4, 1, position};
        std::vector<float> edited = row;
        edited[0] += float(position);
        const token_choice want = choose_token(edited.data(), 8, s, m, 2, counter_rng{7}, site);
        const token_choice got = choose_token(row.data(), 8, s, m, 2, counter_rng{7}, site, p);
        EXPECT_EQ(got.token, want.token) << "T " << s.temperature << " position " << position;
        EXPECT_EQ(got.confidence, want.confidence) << "T " << s.temperature << " position " << position;
      }
    }
  }
}

TEST(LogitsProcessor, TheChoiceReadingIsTheSamplingDistribution) {
  // With the confidence on the sampling distribution, a choice-only rewrite
  // reaches the confidence; on the raw distribution it does not.
  sampling_settings s{1.0f, 0, 1.0f, true};
  std::vector<float> halved = row;
  for (float& l : halved) l *= 0.5f;
  const draw_site site{0, 0, 5};
  const token_choice want = choose_token(halved.data(), 8, s, confidence_metric::max_prob, -1, counter_rng{3}, site);
  const token_choice got = choose_token(row.data(), 8, s, confidence_metric::max_prob, -1, counter_rng{3}, site,
                                        halve_choice{});
  EXPECT_EQ(got.token, want.token);
  EXPECT_EQ(got.confidence, want.confidence);
  s.confidence_on_sampling_distribution = false;
  const token_choice raw = choose_token(row.data(), 8, s, confidence_metric::max_prob, -1, counter_rng{3}, site,
                                        halve_choice{});
  EXPECT_EQ(raw.token, want.token);
  double z = 0;
  for (float l : row) z += std::exp(double(l));
  EXPECT_NEAR(raw.confidence, std::exp(double(row[std::size_t(raw.token)])) / z, 1e-6);
}

TEST(LogitsProcessor, TheCpuBatchPathAgreesWithTheReference) {
  const std::int64_t rows = 13, vocab = 301;
  std::vector<float> logits(std::size_t(rows * vocab));
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(float(i) * 0.37f) * 4.0f;
  std::vector<draw_site> sites;
  for (std::int64_t r = 0; r < rows; ++r) sites.push_back({2, 5, std::uint32_t(r * 3)});
  const token_ban_processor p = token_ban_processor::llada(true, true, 17, 40);
  for (cpu::isa_level level : {cpu::isa_level::portable, cpu::isa_level::avx2, cpu::isa_level::avx512}) {
    if (level > cpu::detected_isa()) continue;
    for (confidence_metric metric : {confidence_metric::max_prob, confidence_metric::margin,
                                     confidence_metric::neg_entropy}) {
      std::vector<token_choice> out(static_cast<std::size_t>(rows));
      cpu::choose_tokens(logits.data(), rows, vocab, {}, metric, 0, counter_rng{1}, sites.data(), out.data(), level, p);
      for (std::int64_t r = 0; r < rows; ++r) {
        const token_choice want =
            choose_token(logits.data() + r * vocab, vocab, {}, metric, 0, counter_rng{1}, sites[std::size_t(r)], p);
        EXPECT_EQ(out[std::size_t(r)].token, want.token) << cpu::isa_name(level);
        // The vectorised sums round in another order than the reference's.
        EXPECT_NEAR(out[std::size_t(r)].confidence, want.confidence, 1e-5 * std::fabs(want.confidence) + 1e-6)
            << cpu::isa_name(level) << " " << to_string(metric);
        EXPECT_NE(out[std::size_t(r)].token, 17);
      }
    }
  }
}

using test::tiny;

const std::vector<decode_request>& requests = test::two_requests();

diffusion_settings small_layout() {
  diffusion_settings s;
  s.layout = {16, 8, 8};
  return s;
}

// The most frequent generated token of a decode.
std::int32_t most_frequent(const decode_output& out) {
  std::vector<int> counts(std::size_t(tiny().config().vocab_size), 0);
  for (const sequence_output& s : out.sequences)
    for (std::size_t i = std::size_t(s.prompt_length); i < s.canvas.size(); ++i) ++counts[std::size_t(s.canvas[i])];
  return std::int32_t(std::max_element(counts.begin(), counts.end()) - counts.begin());
}

bool generates(const decode_output& out, std::int32_t token) {
  for (const sequence_output& s : out.sequences)
    if (std::find(s.canvas.begin() + s.prompt_length, s.canvas.end(), token) != s.canvas.end()) return true;
  return false;
}

TEST(LogitsProcessorDecoding, LogitsEosInfFromTheSettingsBansTheEndOfSequenceToken) {
  diffusion_settings s = small_layout();
  const decode_output plain = diffusion_decoder<cpu_backend>(tiny(), s).generate(requests);
  const std::int32_t frequent = most_frequent(plain);
  s.eos_token_id = frequent;  // pretend it ends sequences
  s.logits_eos_inf = true;
  diffusion_decoder<cpu_backend> banned(tiny(), s);
  EXPECT_EQ(banned.policy().processor.banned_count, 1);
  EXPECT_EQ(banned.policy().processor.banned[0], frequent);
  const decode_output out = banned.generate(requests);
  EXPECT_FALSE(generates(out, frequent));
  EXPECT_EQ(resident_decoder<cpu_backend>(tiny(), s).generate(requests).sequences[1].canvas, out.sequences[1].canvas);
}

TEST(LogitsProcessorDecoding, AUserProcessorChangesTheTokensInBothDecoders) {
  const diffusion_settings s = small_layout();
  using policy = decoding_policy<count_schedule, selection_rule, example::logit_bias>;
  policy p = policy_from_settings<policy>(s);
  p.processor.add(33, 50.0f);  // token 33 wins everywhere
  const decode_output out = diffusion_decoder<cpu_backend, policy>(tiny(), s, p).generate(requests);
  for (const sequence_output& seq : out.sequences)
    for (std::size_t i = std::size_t(seq.prompt_length); i < seq.canvas.size(); ++i) EXPECT_EQ(seq.canvas[i], 33);
  const decode_output resident = resident_decoder<cpu_backend, policy>(tiny(), s, p).generate(requests);
  EXPECT_EQ(resident.sequences[0].canvas, out.sequences[0].canvas);
  // No bias: the tokens of the built-in policy.
  const decode_output none = diffusion_decoder<cpu_backend, policy>(tiny(), s).generate(requests);
  EXPECT_EQ(none.sequences[0].canvas, diffusion_decoder<cpu_backend>(tiny(), s).generate(requests).sequences[0].canvas);
}

TEST(LogitsProcessorDecoding, TheSettingsOptionsAreChecked) {
  diffusion_settings s = small_layout();
  s.confidence_eos_eot_inf = true;
  test::expect_error<argument_error>([&] { diffusion_decoder<cpu_backend>(tiny(), s); }, {"eot_token_id"});
  s.eot_token_id = 100000;
  test::expect_error<argument_error>([&] { diffusion_decoder<cpu_backend>(tiny(), s); }, {"outside the vocabulary"});
  using policy = decoding_policy<count_schedule, selection_rule, example::logit_bias>;
  s.eot_token_id = 3;
  test::expect_error<argument_error>([&] { diffusion_decoder<cpu_backend, policy>(tiny(), s); },
                                     {"built-in logits processor"});
}

}  // namespace
}  // namespace unmask
