// Token sampling: greedy picks the argmax; Gumbel-max sampling follows
// softmax(l / T), and Dream's top-k / top-p filters keep exactly the tokens
// they should, checked by chi-square tests over many draws.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "support/expect_error.hpp"
#include "unmask/policy/sampling.hpp"

namespace unmask {
namespace {

// Pearson chi-square of counts against probabilities (cells with p > 0).
double chi_square(const std::vector<int>& counts, const std::vector<double>& p, int n) {
  double x2 = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "a filtered token was sampled: " << i;
      continue;
    }
    const double e = n * p[i];
    x2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return x2;
}

std::vector<int> draw(const std::vector<float>& row, const sampling_settings& s, int n, std::int32_t excluded = -1) {
  std::vector<int> counts(row.size(), 0);
  const counter_rng rng{42};
  for (int i = 0; i < n; ++i) {
    const token_choice c = choose_token(row.data(), std::int64_t(row.size()), s, confidence_metric::max_prob,
                                        excluded, rng, {3, std::uint32_t(i), 17});
    ++counts[std::size_t(c.token)];
  }
  return counts;
}

const std::vector<float> sample_logits = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, 1.5f, -1.0f, 0.7f};

std::vector<double> softmax(const std::vector<float>& l, double t) {
  std::vector<double> p;
  double z = 0;
  for (float x : l) z += std::exp(x / t);
  for (float x : l) p.push_back(std::exp(x / t) / z);
  return p;
}

// Critical values of chi-square at p = 0.001: df 7 -> 24.32, df 3 -> 16.27, df 2 -> 13.82.
TEST(Sampling, GumbelMaxFollowsSoftmax) {
  const int n = 40000;
  for (float t : {1.0f, 0.5f, 2.0f}) {
    sampling_settings s;
    s.temperature = t;
    const auto counts = draw(sample_logits, s, n);
    EXPECT_LT(chi_square(counts, softmax(sample_logits, t), n), 24.32) << "temperature " << t;
  }
}

TEST(Sampling, TopKKeepsTheKBestRenormalised) {
  sampling_settings s;
  s.temperature = 1.0f;
  s.top_k = 3;  // tokens 3 (2.0), 5 (1.5), 0 (1.0)
  const int n = 30000;
  const auto counts = draw(sample_logits, s, n);
  std::vector<double> p(sample_logits.size(), 0.0);
  const double z = std::exp(2.0) + std::exp(1.5) + std::exp(1.0);
  p[3] = std::exp(2.0) / z, p[5] = std::exp(1.5) / z, p[0] = std::exp(1.0) / z;
  EXPECT_LT(chi_square(counts, p, n), 13.82);
}

TEST(Sampling, TopPKeepsTheSmallestPrefixReachingP) {
  // softmax(sample_logits) sorted: 3 (.31), 5 (.19), 0 (.11), 7 (.09), 1 (.05) ...
  const auto full = softmax(sample_logits, 1.0);
  sampling_settings s;
  s.temperature = 1.0f;
  s.top_p = 0.6f;  // mass before 0 is .50 <= .6 -> kept; before 7 is .61 > .6 -> dropped
  const int n = 30000;
  const auto counts = draw(sample_logits, s, n);
  std::vector<double> p(sample_logits.size(), 0.0);
  const double z = full[3] + full[5] + full[0];
  p[3] = full[3] / z, p[5] = full[5] / z, p[0] = full[0] / z;
  EXPECT_LT(chi_square(counts, p, n), 13.82);
}

TEST(Sampling, GreedyIsArgmaxAndNeverTheMaskToken) {
  sampling_settings s;
  const counter_rng rng{1};
  token_choice c = choose_token(sample_logits.data(), 8, s, confidence_metric::max_prob, -1, rng, {});
  EXPECT_EQ(c.token, 3);
  EXPECT_NEAR(c.confidence, softmax(sample_logits, 1.0)[3], 1e-6);
  c = choose_token(sample_logits.data(), 8, s, confidence_metric::max_prob, 3, rng, {});  // 3 is the mask id
  EXPECT_EQ(c.token, 5);
  EXPECT_NEAR(c.confidence, softmax(sample_logits, 1.0)[5], 1e-6);  // still normalised over the full vocabulary
  s.temperature = 1.0f;
  for (int i = 0; i < 2000; ++i)
    EXPECT_NE(choose_token(sample_logits.data(), 8, s, confidence_metric::max_prob, 3, rng, {0, std::uint32_t(i), 0}).token, 3);
}

TEST(Sampling, ConfidenceOnTheSamplingDistribution) {
  // Dream: with top-k 2 at temperature 0 the confidence is renormalised over the kept pair.
  sampling_settings s;
  s.top_k = 2;
  s.confidence_on_sampling_distribution = true;
  const token_choice c = choose_token(sample_logits.data(), 8, s, confidence_metric::max_prob, -1, counter_rng{}, {});
  EXPECT_EQ(c.token, 3);
  EXPECT_NEAR(c.confidence, std::exp(2.0) / (std::exp(2.0) + std::exp(1.5)), 1e-6);
}

TEST(SamplingBadInput, InvalidSettings) {
  sampling_settings s;
  s.temperature = -1;
  test::expect_error<argument_error>([&] { s.validate(); }, {"temperature must be >= 0"});
  s = {};
  s.top_p = 0;
  test::expect_error<argument_error>([&] { s.validate(); }, {"top_p must be in (0, 1]"});
  s = {};
  s.top_k = -2;
  test::expect_error<argument_error>([&] { s.validate(); }, {"top_k must be >= 0"});
}

}  // namespace
}  // namespace unmask
