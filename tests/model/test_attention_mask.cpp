#include <gtest/gtest.h>

#include "unmask/model/attention_mask.hpp"

namespace unmask {
namespace {

// key_end must agree with allows(): the visible keys are exactly [0, key_end).
TEST(AttentionMask, KeyEndAgreesWithPredicate) {
  for (attention_mask m : {attention_mask::full(), attention_mask::causal(), attention_mask::block_causal(1),
                           attention_mask::block_causal(4), attention_mask::block_causal(7)}) {
    for (std::int64_t count : {1, 5, 16, 23}) {
      for (std::int64_t q = 0; q < count; ++q) {
        const std::int64_t end = m.key_end(q, count);
        for (std::int64_t k = 0; k < count; ++k) EXPECT_EQ(m.allows(q, k), k < end) << to_string(m.kind) << q << k;
      }
    }
  }
}

TEST(AttentionMask, Semantics) {
  EXPECT_TRUE(attention_mask::full().allows(0, 9));
  EXPECT_FALSE(attention_mask::causal().allows(3, 4));
  EXPECT_TRUE(attention_mask::causal().allows(4, 4));
  const attention_mask b = attention_mask::block_causal(4);
  EXPECT_TRUE(b.allows(4, 7));   // own block, later position
  EXPECT_FALSE(b.allows(3, 4));  // next block
  EXPECT_TRUE(b.allows(9, 0));   // earlier block
}

TEST(AttentionMask, BlockCausalWithAnOrigin) {
  // Blocks counted from a prompt of length 5: the prompt is block -1.
  const attention_mask b = attention_mask::block_causal(4);
  EXPECT_TRUE(b.allows(2, 4, 5));    // prompt sees the prompt
  EXPECT_FALSE(b.allows(2, 5, 5));   // but not the first block
  EXPECT_TRUE(b.allows(5, 8, 5));    // block 0 is [5, 9)
  EXPECT_FALSE(b.allows(8, 9, 5));
  EXPECT_EQ(b.key_end(3, 20, 5), 5);
  EXPECT_EQ(b.key_end(9, 20, 5), 13);
  for (std::int64_t q = 0; q < 20; ++q)
    for (std::int64_t k = 0; k < 20; ++k) EXPECT_EQ(b.allows(q, k, 5), k < b.key_end(q, 20, 5)) << q << " " << k;
}

}  // namespace
}  // namespace unmask
