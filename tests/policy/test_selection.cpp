// Selection rules on hand-made score lists, each case worked out from the
// rule's definition in ../shared/SPEC.md section 4.
#include <gtest/gtest.h>

#include <vector>

#include "support/expect_error.hpp"
#include "unmask/policy/selection.hpp"

namespace unmask {
namespace {

std::int32_t count(const selection_rule& r, std::vector<float> sorted, std::int32_t scheduled = 0,
                   confidence_metric m = confidence_metric::max_prob) {
  return r.commit_count(sorted.data(), std::int32_t(sorted.size()), scheduled, m);
}

TEST(Selection, TopKTakesTheScheduledCount) {
  EXPECT_EQ(count(selection_rule::top_k(), {0.9f, 0.5f, 0.1f}, 2), 2);
  EXPECT_EQ(count(selection_rule::top_k(), {0.9f, 0.5f, 0.1f}, 7), 3);
  EXPECT_EQ(count(selection_rule::top_k(), {0.9f}, 0), 0);
  EXPECT_EQ(count(selection_rule::top_k(), {}, 3), 0);
}

TEST(Selection, FastDllmThresholdAlwaysCommitsTheBest) {
  const auto r = selection_rule::fast_dllm_threshold(0.9f);
  EXPECT_EQ(count(r, {0.5f, 0.4f}), 1);
  EXPECT_EQ(count(r, {0.99f, 0.95f, 0.9f, 0.2f}), 3);  // >= tau commits
  EXPECT_EQ(count(r, {0.99f, 0.95f, 0.93f}), 3);
}

TEST(Selection, DinferThresholdUsesMaxMinusEpsilon) {
  const auto r = selection_rule::dinfer_threshold(0.9f);
  EXPECT_EQ(count(r, {0.5f, 0.499995f, 0.4f}), 2);  // bound min(0.5 - 1e-5, 0.9) = 0.49999
  EXPECT_EQ(count(r, {0.95f, 0.91f, 0.5f}), 2);
}

TEST(Selection, FactorRuleWithTheReferenceQuirk) {
  const auto r = selection_rule::fast_dllm_factor(1.0f);  // thresholds: -1, 1 - 1/3, 1 - 1/4, 1 - 1/5, ...
  EXPECT_EQ(count(r, {0.3f}), 1);                          // M = 1
  EXPECT_EQ(count(r, {0.9f, 0.7f, 0.5f, 0.1f, 0.05f}), 2);  // fails at i = 2 (0.5 < 0.75): k = 2
}

TEST(Selection, FactorQuirkCases) {
  const auto r = selection_rule::fast_dllm_factor(1.0f);
  // First failure at i = 1 with M = 4: k = 1 (neither 0 nor M - 1): one token.
  EXPECT_EQ(count(r, {0.9f, 0.5f, 0.4f, 0.1f}), 1);
  // First failure at i = M - 1 = 2: the quirk commits M = 3.
  EXPECT_EQ(count(r, {0.9f, 0.8f, 0.1f}), 3);
  // No failure: the loop leaves k = M - 1, the quirk makes it M.
  EXPECT_EQ(count(r, {0.99f, 0.98f, 0.97f}), 3);
  // M = 2 always commits both (failure or not at i = 1 = M - 1).
  EXPECT_EQ(count(r, {0.9f, 0.01f}), 2);
}

TEST(Selection, EntropyBoundedPrefix) {
  const auto r = selection_rule::entropy_bounded(1.0f);
  // Errors (entropies) 0.2, 0.5, 0.6, 3.0: prefix sums minus max: 0, 0.2, 0.7, 1.3 -> 3 tokens.
  EXPECT_EQ(count(r, {-0.2f, -0.5f, -0.6f, -3.0f}, 0, confidence_metric::neg_entropy), 3);
  // Always at least one, even when the first error alone is huge.
  EXPECT_EQ(count(selection_rule::entropy_bounded(0.0f), {-9.0f, -9.5f}, 0, confidence_metric::neg_entropy), 1);
  // With probabilities the error is 1 - p: 0.05, 0.1, 0.5 -> sums minus max 0, 0.05, 0.15; gamma 0.1 -> 2.
  EXPECT_EQ(count(selection_rule::entropy_bounded(0.1f), {0.95f, 0.9f, 0.5f}), 2);
}

TEST(SelectionBadInput, InvalidParameters) {
  test::expect_error<argument_error>([] { selection_rule::fast_dllm_factor(0.0f).validate(); }, {"factor must be positive"});
  test::expect_error<argument_error>([] { selection_rule::entropy_bounded(-1.0f).validate(); }, {"gamma must be >= 0"});
  test::expect_error<argument_error>([] { selection_rule::dream_alg_temp(0.0f).validate(); }, {"alg_temp must be positive"});
  test::expect_error<argument_error>([] { parse_selection_kind("best"); }, {"unknown selection rule 'best'"});
}

}  // namespace
}  // namespace unmask
