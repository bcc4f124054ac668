// Schedules against their formulas (../shared/SPEC.md section 2).
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "support/expect_error.hpp"
#include "unmask/schedule/block_layout.hpp"
#include "unmask/schedule/count_schedule.hpp"
#include "unmask/schedule/noise_schedule.hpp"

namespace unmask {
namespace {

// Simulates a block: commits the schedule's count every step.
std::vector<std::int32_t> run(const count_schedule& s, std::int32_t masks, std::int32_t steps) {
  std::vector<std::int32_t> counts;
  std::int32_t left = masks;
  for (std::int32_t i = 0; i < steps; ++i) {
    counts.push_back(s.count(i, steps, masks, left));
    left -= counts.back();
  }
  return counts;
}

TEST(CountSchedule, LladaEvenSplit) {
  const count_schedule s;
  EXPECT_EQ(run(s, 10, 3), (std::vector<std::int32_t>{4, 3, 3}));
  EXPECT_EQ(run(s, 32, 32), std::vector<std::int32_t>(32, 1));
  EXPECT_EQ(run(s, 8, 2), (std::vector<std::int32_t>{4, 4}));
  EXPECT_EQ(run(s, 7, 4), (std::vector<std::int32_t>{2, 2, 2, 1}));
  for (std::int32_t m : {1, 5, 13, 64})
    for (std::int32_t steps : {1, 2, 5, 16}) {
      const auto counts = run(s, m, steps);
      EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), 0), m);  // every mask filled
    }
}

TEST(CountSchedule, TorchLinspaceInFloat32) {
  // torch.linspace(1, 1e-3, 5) = [1.0, 0.75025, 0.5005, 0.25075, 0.001]
  const float expected[5] = {1.0f, 0.75025f, 0.5005f, 0.25075f, 0.001f};
  for (int i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(torch_linspace_f32(1.0f, 1e-3f, 5, i), expected[i]);
}

TEST(CountSchedule, DreamCountRule) {
  const count_schedule s{count_schedule_kind::dream, 1e-3f};
  // Step 0 of 4 with 24 masks: int(24 * (1 - 0.75025)) = int(5.994) = 5.
  EXPECT_EQ(s.count(0, 4, 24, 24), 5);
  // Step 1 with 19 left: int(19 * (1 - 0.5005 / 0.75025)) = int(6.325) = 6.
  EXPECT_EQ(s.count(1, 4, 24, 19), 6);
  EXPECT_EQ(s.count(3, 4, 24, 9), 9);  // the last step commits everything
  for (std::int32_t steps : {1, 3, 8, 24}) {
    const auto counts = run(s, 24, steps);
    EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), 0), 24);
  }
}

TEST(CountSchedule, LlamaCppTimestepRule) {
  const count_schedule s{count_schedule_kind::llama_cpp, 1e-3f};
  // t = 1, s = 1 - 0.25 * 0.999 = 0.75025: int(24 * 0.24975) = 5
  EXPECT_EQ(s.count(0, 4, 24, 24), 5);
  const auto counts = run(s, 30, 6);
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), 0), 30);
}

TEST(NoiseSchedule, LogLinearRevealIsTMinusSOverT) {
  const noise_schedule n;  // log-linear, grid 1 -> 1e-5
  for (int steps : {4, 10, 128})
    for (int i = 0; i < steps; ++i) {
      const double t = n.time(i, steps), s = n.time(i + 1, steps);
      EXPECT_NEAR(n.reveal_probability(i, steps), (t - s) / t, 2e-5) << i;
    }
  EXPECT_NEAR(n.reveal_probability(9, 10), 1.0, 1e-3);  // the last step reveals (almost) everything
}

TEST(NoiseSchedule, EverySchedulesAlphaRisesFromNearZeroToOne) {
  for (noise_kind k : {noise_kind::log_linear, noise_kind::cosine, noise_kind::linear}) {
    noise_schedule n;
    n.kind = k;
    EXPECT_LT(n.alpha(1.0f), 1e-2f);
    EXPECT_NEAR(n.alpha(0.0f), 1.0f, 1e-6f);
    for (int i = 0; i < 10; ++i) {
      EXPECT_GE(n.reveal_probability(i, 10), 0.0f);
      EXPECT_LE(n.reveal_probability(i, 10), 1.0f);
      EXPECT_LT(n.alpha(n.time(i, 10)), n.alpha(n.time(i + 1, 10)));
    }
  }
}

TEST(BlockLayoutBadInput, InvalidCombinationsAreErrors) {
  using test::expect_error;
  expect_error<argument_error>([] { block_layout{100, 32, 10}.validate(); }, {"gen_length 100 is not a multiple of block_length 32"});
  expect_error<argument_error>([] { block_layout{128, 32, 10}.validate(); }, {"steps 10 is not a multiple of the number of blocks 4"});
  expect_error<argument_error>([] { block_layout{128, 32, 0}.validate(); }, {"steps must be positive"});
  expect_error<argument_error>([] { block_layout{0, 32, 8}.validate(); }, {"gen_length must be positive"});
  expect_error<argument_error>([] { block_layout{64, 0, 8}.validate(); }, {"block_length must be positive"});
  EXPECT_NO_THROW((block_layout{128, 32, 0}.validate(false)));  // threshold rules choose their own steps
  EXPECT_EQ((block_layout{128, 32, 64}.steps_per_block()), 16);
}

}  // namespace
}  // namespace unmask
