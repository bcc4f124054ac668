// Decoding policies as types (unmask/policy/decoding_policy.hpp): the
// built-in policy built from the settings decodes what the settings always
// decoded, a policy given explicitly overrides them, a user's rule's order
// key is used, a rule that never commits is stopped with an error, and the
// compile-time checks tell a type that meets the interface from one that
// does not.
#include <gtest/gtest.h>

#include <type_traits>
#include <vector>

#include "support/decode_cases.hpp"
#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "support/user_policies.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/resident_decoder.hpp"
#include "unmask/policy/decoding_policy.hpp"

namespace unmask {
namespace {

const llada_model& tiny() {
  static const llada_model model = llada_model::load(test::data_dir() + "/tiny_llada_mha");
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
static_assert(std::is_constructible<diffusion_decoder<cpu_backend>, const llada_model&, diffusion_settings>::value);
static_assert(!std::is_constructible<diffusion_decoder<cpu_backend>, llada_model, diffusion_settings>::value);
static_assert(!std::is_constructible<resident_decoder<cpu_backend>, llada_model, diffusion_settings>::value);
static_assert(!std::is_constructible<llada_forward<cpu_backend>, llada_model>::value);

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

}  // namespace
}  // namespace unmask
