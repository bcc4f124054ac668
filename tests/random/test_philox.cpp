#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "unmask/random/philox.hpp"

namespace unmask {
namespace {

// Random123's published known-answer vectors for Philox4x32-10 (kat_vectors).
TEST(Philox, KnownAnswerVectors) {
  struct kat {
    std::uint32_t counter[4], key[2], expected[4];
  };
  const kat cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const kat& k : cases) {
    std::uint32_t out[4];
    philox4x32_10(k.counter, k.key, out);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], k.expected[i]) << i;
  }
}

TEST(CounterRng, UniformIsOpenIntervalAndStreamsDiffer) {
  const counter_rng rng{1234};
  double sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const float u = rng.uniform(random_purpose::token, 7, 3, 11, std::uint32_t(i));
    ASSERT_GT(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
  // Different purposes, sequences, steps and positions give different numbers.
  const float base = rng.uniform(random_purpose::token, 1, 2, 3, 4);
  EXPECT_NE(base, rng.uniform(random_purpose::reveal, 1, 2, 3, 4));
  EXPECT_NE(base, rng.uniform(random_purpose::token, 9, 2, 3, 4));
  EXPECT_NE(base, rng.uniform(random_purpose::token, 1, 9, 3, 4));
  EXPECT_NE(base, rng.uniform(random_purpose::token, 1, 2, 9, 4));
  EXPECT_NE(base, counter_rng{1235}.uniform(random_purpose::token, 1, 2, 3, 4));
  EXPECT_EQ(base, counter_rng{1234}.uniform(random_purpose::token, 1, 2, 3, 4));  // a pure function
}

}  // namespace
}  // namespace unmask
