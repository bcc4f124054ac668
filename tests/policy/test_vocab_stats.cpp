// The one-pass vocabulary statistics against direct double-precision
// formulas, pushed in one pass and merged from pieces (as CUDA blocks will).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "unmask/policy/confidence.hpp"
#include "unmask/policy/vocab_stats.hpp"

namespace unmask {
namespace {

struct direct {
  double lse, neg_entropy, p_max, margin;
  int argmax;
};

direct compute(const std::vector<float>& l) {
  direct d{};
  const double m = *std::max_element(l.begin(), l.end());
  double z = 0;
  for (float x : l) z += std::exp(x - m);
  d.lse = m + std::log(z);
  std::vector<double> p;
  for (float x : l) p.push_back(std::exp(x - d.lse));
  for (double q : p) d.neg_entropy += q > 0 ? q * std::log(q) : 0;
  d.argmax = int(std::max_element(l.begin(), l.end()) - l.begin());
  std::vector<double> sorted = p;
  std::sort(sorted.rbegin(), sorted.rend());
  d.p_max = sorted[0];
  d.margin = sorted[0] - sorted[1];
  return d;
}

TEST(VocabStats, OnePassAndMergedMatchDirectFormulas) {
  std::mt19937 rng(9);
  for (int trial = 0; trial < 50; ++trial) {
    const int vocab = 2 + int(rng() % 5000);
    std::normal_distribution<float> normal(0.0f, 1.0f + float(trial % 5) * 2.0f);
    std::vector<float> l(static_cast<std::size_t>(vocab));
    for (float& x : l) x = normal(rng);
    const direct d = compute(l);
    vocab_stats one;
    for (int v = 0; v < vocab; ++v) one.push(l[std::size_t(v)], v);
    // Pieces of random sizes, merged in order and in reverse.
    vocab_stats merged, reversed;
    std::vector<vocab_stats> pieces;
    for (int begin = 0; begin < vocab;) {
      const int end = std::min(vocab, begin + 1 + int(rng() % 700));
      vocab_stats piece;
      for (int v = begin; v < end; ++v) piece.push(l[std::size_t(v)], v);
      pieces.push_back(piece);
      begin = end;
    }
    for (const auto& piece : pieces) merged.merge(piece);
    for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) reversed.merge(*it);
    for (const vocab_stats& s : {one, merged, reversed}) {
      EXPECT_EQ(s.argmax, d.argmax);
      EXPECT_NEAR(s.log_sum_exp(), d.lse, 1e-4 * (1 + std::fabs(d.lse)));
      EXPECT_NEAR(s.negative_entropy(), d.neg_entropy, 2e-4 * (1 + std::fabs(d.neg_entropy)));
      EXPECT_NEAR(confidence_of(confidence_metric::max_prob, s, l[std::size_t(d.argmax)], 0), d.p_max, 1e-5);
      EXPECT_NEAR(confidence_of(confidence_metric::margin, s, 0, 0), d.margin, 1e-5);
    }
  }
}

TEST(VocabStats, TiesPickTheFirstIndexLikeTorchArgmax) {
  vocab_stats s, a, b;
  const float l[5] = {1.0f, 3.0f, 2.0f, 3.0f, 0.0f};
  for (int v = 0; v < 5; ++v) s.push(l[v], v);
  EXPECT_EQ(s.argmax, 1);
  EXPECT_EQ(s.second_logit, 3.0f);  // the tie is the runner-up: margin 0
  EXPECT_NEAR(s.margin(), 0.0f, 1e-7f);
  for (int v = 3; v < 5; ++v) a.push(l[v], v);
  for (int v = 0; v < 3; ++v) b.push(l[v], v);
  a.merge(b);  // the later piece first: still index 1
  EXPECT_EQ(a.argmax, 1);
  EXPECT_EQ(a.second_logit, 3.0f);
}

}  // namespace
}  // namespace unmask
