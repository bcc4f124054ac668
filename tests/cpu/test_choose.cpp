// The CPU backend's batched token choice against the reference choose_token:
// the greedy fast path (vectorised statistics) gives the same token and the
// same confidence to rounding for every metric, at every level, with ties,
// an excluded maximum, -inf and NaN entries and odd vocabulary sizes; the
// sampled path is the reference itself.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "cpu/kernel_levels.hpp"
#include "support/expect_error.hpp"
#include "unmask/cpu/choose.hpp"

namespace unmask {
namespace {

using test::cpu_levels;

TEST(ChooseTokens, GreedyFastPathEqualsTheReference) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  const counter_rng draws{7};
  for (std::int64_t vocab : {1, 7, 64, 100, 4096, 4099}) {
    const std::int64_t rows = 6;
    std::vector<float> logits(std::size_t(rows * vocab));
    for (float& v : logits) v = 3 * normal(rng);
    // Row 1: a tie for the maximum; row 2: the excluded token is the maximum;
    // row 3: -inf entries; row 4: a NaN entry.
    const std::int32_t excluded = vocab > 1 ? std::int32_t(vocab / 2) : -1;
    if (vocab > 3) {
      logits[std::size_t(vocab + 1)] = logits[std::size_t(vocab + vocab - 1)] = 50.0f;
      logits[std::size_t(2 * vocab + excluded)] = 60.0f;
      for (std::int64_t v = 0; v < vocab; v += 2) logits[std::size_t(3 * vocab + v)] = -std::numeric_limits<float>::infinity();
      logits[std::size_t(4 * vocab + 2)] = std::nanf("");
    }
    std::vector<draw_site> sites(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) sites[std::size_t(r)] = {0, 1, std::uint32_t(r)};
    for (confidence_metric metric : {confidence_metric::max_prob, confidence_metric::margin,
                                     confidence_metric::neg_entropy, confidence_metric::random})
      for (cpu::isa_level level : cpu_levels()) {
        std::vector<token_choice> fast(static_cast<std::size_t>(rows));
        cpu::choose_tokens(logits.data(), rows, vocab, sampling_settings{}, metric, excluded, draws, sites.data(),
                           fast.data(), level);
        for (std::int64_t r = 0; r < rows; ++r) {
          if (vocab > 3 && r == 4) continue;  // NaN: the reference's confidence is NaN too
          const token_choice ref = choose_token(logits.data() + r * vocab, vocab, sampling_settings{}, metric, excluded,
                                                draws, sites[std::size_t(r)]);
          ASSERT_EQ(fast[std::size_t(r)].token, ref.token) << cpu::isa_name(level) << " vocab " << vocab << " row " << r;
          EXPECT_NEAR(fast[std::size_t(r)].confidence, ref.confidence, 2e-6 * (1 + std::fabs(ref.confidence)))
              << cpu::isa_name(level) << " vocab " << vocab << " row " << r << " " << to_string(metric);
        }
        if (vocab > 3) {
          EXPECT_EQ(fast[4].token, choose_token(logits.data() + 4 * vocab, vocab, sampling_settings{}, metric, excluded,
                                                draws, sites[4]).token);
        }
      }
  }
}

TEST(ChooseTokens, SixteenLaneStatisticsEqualTheReference) {
  // The AVX-512 layout (16 lanes) of the statistics pass, on any CPU.
  std::mt19937 rng(4);
  std::normal_distribution<float> normal;
  std::vector<float> logits(1000);
  for (float& v : logits) v = normal(rng);
  vocab_stats fast, ref;
  std::int32_t token = -1;
  cpu::isa_portable::vocab_row_stats<cpu::isa_portable::generic_ops<16>>(logits.data(), 1000, 5, fast, token);
  for (std::int32_t v = 0; v < 1000; ++v) ref.push(logits[std::size_t(v)], v);
  EXPECT_EQ(fast.argmax, ref.argmax);
  EXPECT_EQ(fast.max_logit, ref.max_logit);
  EXPECT_EQ(fast.second_logit, ref.second_logit);
  EXPECT_NEAR(fast.sum_exp, ref.sum_exp, 1e-5 * ref.sum_exp);
  EXPECT_NEAR(fast.sum_exp_delta, ref.sum_exp_delta, 1e-5 * std::fabs(ref.sum_exp_delta));
}

TEST(ChooseTokens, NoFiniteLogitIsAnError) {
  std::vector<float> logits(33, -std::numeric_limits<float>::infinity());
  const draw_site site{};
  token_choice out;
  test::expect_error<numeric_error>([&] {
    cpu::choose_tokens(logits.data(), 1, 33, sampling_settings{}, confidence_metric::max_prob, -1, counter_rng{1}, &site,
                       &out, cpu::default_isa());
  }, {"no token has a finite logit"});
}

}  // namespace
}  // namespace unmask
