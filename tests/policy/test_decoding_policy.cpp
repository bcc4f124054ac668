// Decoding policies as types (unmask/policy/decoding_policy.hpp): the
// built-in policy built from the settings decodes what the settings always
// decoded, a policy given explicitly overrides them, a user's rule's order
// key is used, a rule that never commits is stopped with an error, and the
// compile-time checks tell a type that meets the interface from one that
// does not; a confidence metric of one's own gives the confidences it
// computes, in the token choice and in both decoders.
#include <gtest/gtest.h>

#include <cmath>
#include <type_traits>
#include <vector>

#include "support/decode_cases.hpp"
#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "support/user_policies.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/cpu/choose.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/resident_decoder.hpp"
#include "unmask/policy/decoding_policy.hpp"

namespace unmask {
namespace {

const transformer_model& tiny() {
  static const transformer_model model = transformer_model::load(test::data_dir() + "/tiny_llada_mha");
  return model;
}

const std::vector<decode_request> requests = {{{5, 17, 42, 3}, 0}, {{9}, 2}};

// Commits nothing, ever.
struct never_rule {
  UNMASK_HOST_DEVICE std::int32_t commit_count(const float*, std::int32_t, std::int32_t, confidence_metric) const {
    return 0;
  }
  UNMASK_HOST_DEVICE bool uses_schedule() const { return false; }
};

using test::least_confident_first;

struct no_count {
  bool uses_schedule() const { return true; }
};

static_assert(detail::has_commit_count<selection_rule>::value && detail::has_uses_schedule<selection_rule>::value);
static_assert(detail::has_order_key<selection_rule>::value && !detail::has_order_key<never_rule>::value);
static_assert(!detail::has_commit_count<no_count>::value && detail::has_uses_schedule<no_count>::value);
static_assert(detail::has_schedule_count<count_schedule>::value && !detail::has_schedule_count<selection_rule>::value);
// The model must outlive a decoder: a temporary model does not compile.
static_assert(std::is_constructible<diffusion_decoder<cpu_backend>, const transformer_model&, diffusion_settings>::value);
static_assert(!std::is_constructible<diffusion_decoder<cpu_backend>, transformer_model, diffusion_settings>::value);
static_assert(!std::is_constructible<resident_decoder<cpu_backend>, transformer_model, diffusion_settings>::value);
static_assert(!std::is_constructible<transformer_forward<cpu_backend>, transformer_model>::value);

TEST(DecodingPolicy, BuiltFromTheSettingsDecodesAsBefore) {
  for (const test::policy_case& c : test::confidence_policy_cases()) {
    const decode_output implicit = diffusion_decoder<cpu_backend>(tiny(), c.settings).generate(requests);
    const builtin_policy policy{c.settings.schedule, c.settings.selection};
    diffusion_settings plain = c.settings;
    plain.selection = {};  // an explicit policy is used as given
    plain.schedule = {};
    const decode_output explicit_policy = diffusion_decoder<cpu_backend>(tiny(), plain, policy).generate(requests);
    for (std::size_t i = 0; i < requests.size(); ++i)
      EXPECT_EQ(explicit_policy.sequences[i].canvas, implicit.sequences[i].canvas) << c.name << " sequence " << i;
    EXPECT_EQ(explicit_policy.forwards, implicit.forwards) << c.name;
  }
}

TEST(DecodingPolicy, PolicyFromSettingsTakesOnlyTheBuiltInComponents) {
  diffusion_settings s;
  s.selection = selection_rule::threshold(0.5f);
  s.schedule.kind = count_schedule_kind::dream;
  const auto builtin = policy_from_settings<builtin_policy>(s);
  EXPECT_EQ(builtin.selection.kind, selection_kind::threshold);
  EXPECT_EQ(builtin.schedule.kind, count_schedule_kind::dream);
  const auto mixed = policy_from_settings<decoding_policy<count_schedule, least_confident_first>>(s);
  EXPECT_EQ(mixed.schedule.kind, count_schedule_kind::dream);
}

TEST(DecodingPolicy, AUserOrderKeyDecidesWhichCandidatesCommit) {
  // With a one-token-a-step layout the order alone tells the two apart.
  const std::int32_t positions[] = {0, 1, 2};
  const std::int32_t tokens[] = {7, 8, 9};
  const float confidence[] = {0.5f, 0.9f, 0.1f};
  std::vector<std::int32_t> canvas(3, -1);
  const basic_selection_options<least_confident_first, count_schedule> o;
  const selection_sequence seq{0, 3, 0, 0, 0, 0, 3, 3};  // even schedule: 1 of 3 at step 0
  EXPECT_EQ(commit_selection(seq, positions, tokens, confidence, o, canvas.data()), 1);
  EXPECT_EQ(canvas, (std::vector<std::int32_t>{-1, -1, 9}));
  diffusion_settings s;
  s.layout = {8, 8, 8};
  using policy = decoding_policy<count_schedule, least_confident_first>;
  // The order positions are committed in differs (the random test model
  // proposes one token nearly everywhere, so the canvases may not).
  std::vector<std::int32_t> reversed_order, usual_order;
  const decode_output reversed = diffusion_decoder<cpu_backend, policy>(tiny(), s).generate(
      requests, [&](const decode_event& e) {
        if (e.sequence == 0) reversed_order.push_back(e.committed_positions->at(0));
      });
  diffusion_decoder<cpu_backend>(tiny(), s).generate(requests, [&](const decode_event& e) {
    if (e.sequence == 0) usual_order.push_back(e.committed_positions->at(0));
  });
  ASSERT_EQ(reversed_order.size(), 8u);
  EXPECT_NE(reversed_order, usual_order);
  const decode_output resident = resident_decoder<cpu_backend, policy>(tiny(), s).generate(requests);
  for (std::size_t i = 0; i < requests.size(); ++i)
    EXPECT_EQ(resident.sequences[i].canvas, reversed.sequences[i].canvas) << "sequence " << i;
}

TEST(DecodingPolicy, ARuleThatNeverCommitsIsStoppedWithAnError) {
  diffusion_settings s;
  s.layout = {8, 8, 4};
  using policy = decoding_policy<count_schedule, never_rule>;
  test::expect_error<argument_error>([&] { diffusion_decoder<cpu_backend, policy>(tiny(), s).generate(requests); },
                                     {"committed nothing", "block 0"});
  test::expect_error<argument_error>([&] { resident_decoder<cpu_backend, policy>(tiny(), s).generate(requests); },
                                     {"left masks in block 0"});
}

static_assert(detail::is_metric_callable<test::log_probability>::value);
static_assert(!detail::is_metric_callable<least_confident_first>::value);
static_assert(check_confidence_metric<confidence_metric>());

TEST(ConfidenceMetric, AUserMetricGivesTheConfidenceOfTheChoice) {
  const std::vector<float> row = {0.5f, 3.0f, 1.0f, 2.5f, -1.0f, 0.0f, 2.9f, 0.2f};
  const token_rules<no_logits_processor, test::log_probability> log_p{};
  for (const sampling_settings& s : {sampling_settings{}, sampling_settings{0.8f, 0, 1.0f, true},
                                     sampling_settings{1.2f, 3, 1.0f, false}}) {
    for (std::uint32_t position = 0; position < 8; ++position) {
      const draw_site site{1, 2, position};
      const token_choice p = choose_token(row.data(), 8, s, confidence_metric::max_prob, 5, counter_rng{4}, site);
      const token_choice lp =
          choose_token(row.data(), 8, s, confidence_metric::max_prob, 5, counter_rng{4}, site, log_p);
      EXPECT_EQ(lp.token, p.token);
      EXPECT_NEAR(lp.confidence, std::log(p.confidence), 1e-5);
    }
  }
  // The CPU batch path (its vectorised greedy pass included) agrees.
  const std::int64_t rows = 9, vocab = 517;
  std::vector<float> logits(std::size_t(rows * vocab));
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = std::cos(float(i) * 0.61f) * 3.0f;
  std::vector<draw_site> sites;
  for (std::int64_t r = 0; r < rows; ++r) sites.push_back({3, 1, std::uint32_t(r)});
  const token_rules<no_logits_processor, test::jittered_probability> jitter{};
  std::vector<token_choice> out(static_cast<std::size_t>(rows));
  cpu::choose_tokens(logits.data(), rows, vocab, {}, confidence_metric::max_prob, -1, counter_rng{8}, sites.data(),
                     out.data(), cpu::detected_isa(), jitter);
  for (std::int64_t r = 0; r < rows; ++r) {
    const token_choice want = choose_token(logits.data() + r * vocab, vocab, {}, confidence_metric::max_prob, -1,
                                           counter_rng{8}, sites[std::size_t(r)], jitter);
    EXPECT_EQ(out[std::size_t(r)].token, want.token);
    EXPECT_NEAR(out[std::size_t(r)].confidence, want.confidence, 1e-6);
    const float u = counter_rng{8}.uniform(random_purpose::confidence, 3, 1, std::uint32_t(r), 0);
    const token_choice p = choose_token(logits.data() + r * vocab, vocab, {}, confidence_metric::max_prob, -1,
                                        counter_rng{8}, sites[std::size_t(r)]);
    EXPECT_NEAR(want.confidence, p.confidence * u, 1e-6);
  }
}

TEST(ConfidenceMetric, DecodersTakeTheMetricFromThePolicy) {
  diffusion_settings s;
  s.layout = {16, 8, 8};
  // log p orders the candidates as p does: top-k decodes the same tokens.
  using log_policy = decoding_policy<count_schedule, selection_rule, token_ban_processor, test::log_probability>;
  const decode_output plain = diffusion_decoder<cpu_backend>(tiny(), s).generate(requests);
  const decode_output logged = diffusion_decoder<cpu_backend, log_policy>(tiny(), s).generate(requests);
  for (std::size_t i = 0; i < requests.size(); ++i) EXPECT_EQ(logged.sequences[i].canvas, plain.sequences[i].canvas);
  // A threshold on log p commits what a threshold on p commits.
  s.selection = selection_rule::threshold(0.3f);
  const decode_output p_threshold = diffusion_decoder<cpu_backend>(tiny(), s).generate(requests);
  s.selection = selection_rule::threshold(std::log(0.3f));
  const decode_output log_threshold = diffusion_decoder<cpu_backend, log_policy>(tiny(), s).generate(requests);
  EXPECT_EQ(log_threshold.forwards, p_threshold.forwards);
  for (std::size_t i = 0; i < requests.size(); ++i)
    EXPECT_EQ(log_threshold.sequences[i].canvas, p_threshold.sequences[i].canvas);
  // A metric with an order of its own changes the commit order, the same in
  // both decoders and for a sequence alone or in a batch.
  s.selection = selection_rule::top_k();
  using jitter_policy =
      decoding_policy<count_schedule, selection_rule, token_ban_processor, test::jittered_probability>;
  std::vector<std::int32_t> jittered_order, usual_order;
  const decode_output jittered = diffusion_decoder<cpu_backend, jitter_policy>(tiny(), s).generate(
      requests, [&](const decode_event& e) {
        if (e.sequence == 0) jittered_order.insert(jittered_order.end(), e.committed_positions->begin(),
                                                   e.committed_positions->end());
      });
  diffusion_decoder<cpu_backend>(tiny(), s).generate(requests, [&](const decode_event& e) {
    if (e.sequence == 0) usual_order.insert(usual_order.end(), e.committed_positions->begin(),
                                            e.committed_positions->end());
  });
  EXPECT_NE(jittered_order, usual_order);
  const decode_output resident = resident_decoder<cpu_backend, jitter_policy>(tiny(), s).generate(requests);
  const decode_output alone = diffusion_decoder<cpu_backend, jitter_policy>(tiny(), s).generate({requests[1]});
  for (std::size_t i = 0; i < requests.size(); ++i)
    EXPECT_EQ(resident.sequences[i].canvas, jittered.sequences[i].canvas);
  EXPECT_EQ(alone.sequences[0].canvas, jittered.sequences[1].canvas);
}

static_assert(detail::is_sampler_key<test::tempered_gumbel>::value);
static_assert(!detail::is_sampler_key<test::log_probability>::value);

TEST(TokenSampler, AGumbelSamplerOfOnesOwnDrawsTheBuiltInTokens) {
  const std::vector<float> row = {0.5f, 3.0f, 1.0f, 2.5f, -1.0f, 0.0f, 2.9f, 0.2f};
  const token_rules<no_logits_processor, confidence_metric, test::tempered_gumbel> rules{{}, {}, {0.7f}};
  for (std::uint32_t step = 0; step < 40; ++step) {
    const draw_site site{2, step, 9};
    const token_choice own = choose_token(row.data(), 8, {}, confidence_metric::max_prob, 3, counter_rng{5}, site,
                                          rules);
    const token_choice builtin = choose_token(row.data(), 8, {0.7f, 0, 1.0f, false}, confidence_metric::max_prob, 3,
                                              counter_rng{5}, site);
    EXPECT_EQ(own.token, builtin.token);
    EXPECT_EQ(own.confidence, builtin.confidence);
  }
  diffusion_settings s;
  s.layout = {16, 8, 8};
  s.seed = 11;
  using policy = decoding_policy<count_schedule, selection_rule, token_ban_processor, confidence_metric,
                                 test::tempered_gumbel>;
  const policy p{{}, {}, {}, {}, {0.7f}};
  const decode_output own = diffusion_decoder<cpu_backend, policy>(tiny(), s, p).generate(requests);
  const decode_output resident = resident_decoder<cpu_backend, policy>(tiny(), s, p).generate(requests);
  s.sampling.temperature = 0.7f;
  const decode_output builtin = diffusion_decoder<cpu_backend>(tiny(), s).generate(requests);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(own.sequences[i].canvas, builtin.sequences[i].canvas);
    EXPECT_EQ(resident.sequences[i].canvas, builtin.sequences[i].canvas);
  }
  test::expect_error<argument_error>([&] { diffusion_decoder<cpu_backend, policy>(tiny(), s, p); },
                                     {"token sampler of one's own", "temperature"});
}

TEST(TokenSampler, ADeterministicSamplerChoosesByItsKey) {
  diffusion_settings s;
  s.layout = {16, 8, 8};
  using policy =
      decoding_policy<count_schedule, selection_rule, token_ban_processor, confidence_metric, test::even_bonus>;
  for (const decode_output& out : {diffusion_decoder<cpu_backend, policy>(tiny(), s).generate(requests),
                                   resident_decoder<cpu_backend, policy>(tiny(), s).generate(requests)})
    for (const sequence_output& seq : out.sequences)
      for (std::size_t i = std::size_t(seq.prompt_length); i < seq.canvas.size(); ++i)
        EXPECT_EQ(seq.canvas[i] % 2, 0) << "position " << i;
}

}  // namespace
}  // namespace unmask
