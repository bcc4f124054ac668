// CPU attention at every instruction-set level against a direct
// double-precision evaluation of softmax(q k^T / sqrt(d)) v with an explicit
// mask matrix, covering GQA, every mask kind, padding, head dims that are not
// a multiple of the vector width, key ranges of several tiles, and a query
// block offset into a longer key range; and the invariance block-causal
// caching rests on: a query's output is the same bits whatever else is in
// its batch or tile and however long the cached key range is.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/kernel_levels.hpp"
#include "unmask/cpu/attention.hpp"
#include "unmask/cpu/parallel.hpp"

namespace unmask {
namespace {

// offsets/q_lengths/kv_lengths per sequence.
void check_attention(const test::kernel_level& level, const attention_shape& s, const std::vector<std::int32_t>& offsets,
                     const std::vector<std::int32_t>& q_lengths, const std::vector<std::int32_t>& kv_lengths,
                     attention_mask mask) {
  std::mt19937 rng(unsigned(s.q_len * 31 + s.kv_capacity + s.heads));
  std::normal_distribution<float> normal;
  const std::int64_t hd = s.head_dim;
  std::vector<float> q(std::size_t(s.batch * s.q_len * s.heads * hd)), k(std::size_t(s.batch * s.kv_capacity * s.kv_heads * hd)),
      v(k.size()), out(q.size(), std::nanf(""));
  for (auto* buf : {&q, &k, &v})
    for (float& x : *buf) x = 2 * normal(rng);
  level.attention(q.data(), k.data(), v.data(), out.data(), s, {offsets.data(), q_lengths.data(), kv_lengths.data()},
                  mask);
  const std::int64_t group = s.heads / s.kv_heads;
  for (std::int64_t b = 0; b < s.batch; ++b) {
    for (std::int64_t h = 0; h < s.heads; ++h) {
      for (std::int64_t i = 0; i < s.q_len; ++i) {
        const std::int64_t pos = offsets[std::size_t(b)] + i;
        const std::int64_t keys = kv_lengths[std::size_t(b)];
        const float* o = &out[std::size_t(((b * s.q_len + i) * s.heads + h) * hd)];
        if (i >= q_lengths[std::size_t(b)]) {
          for (std::int64_t d = 0; d < hd; ++d) EXPECT_EQ(o[d], 0.0f);
          continue;
        }
        std::vector<double> w(std::size_t(s.kv_capacity), 0.0);
        double maximum = -1e300, total = 0;
        for (std::int64_t j = 0; j < s.kv_capacity; ++j) {
          if (!mask.allows(pos, j) || j >= keys) continue;
          double dot = 0;
          for (std::int64_t d = 0; d < hd; ++d)
            dot += double(q[std::size_t(((b * s.q_len + i) * s.heads + h) * hd + d)]) *
                   k[std::size_t(((b * s.kv_capacity + j) * s.kv_heads + h / group) * hd + d)];
          w[std::size_t(j)] = dot / std::sqrt(double(hd));
          maximum = std::max(maximum, w[std::size_t(j)]);
        }
        for (std::int64_t j = 0; j < s.kv_capacity; ++j) {
          if (!mask.allows(pos, j) || j >= keys) {
            w[std::size_t(j)] = 0;
            continue;
          }
          total += w[std::size_t(j)] = std::exp(w[std::size_t(j)] - maximum);
        }
        for (std::int64_t d = 0; d < hd; ++d) {
          double expected = 0;
          for (std::int64_t j = 0; j < s.kv_capacity; ++j)
            expected += w[std::size_t(j)] / total * v[std::size_t(((b * s.kv_capacity + j) * s.kv_heads + h / group) * hd + d)];
          ASSERT_NEAR(o[d], expected, 2e-5 * (1 + std::fabs(expected)))
              << level.name << " " << to_string(mask.kind) << " b" << b << " h" << h << " i" << i << " d" << d;
        }
      }
    }
  }
}

TEST(Attention, EveryMaskWithGqaAndPadding) {
  attention_shape s;
  s.batch = 3;
  s.q_len = s.kv_capacity = 13;
  s.heads = 6;
  s.kv_heads = 2;
  s.head_dim = 10;
  for (const test::kernel_level& level : test::kernel_levels())
    for (attention_mask m : {attention_mask::full(), attention_mask::causal(), attention_mask::block_causal(4)})
      check_attention(level, s, {0, 0, 0}, {13, 7, 1}, {13, 7, 1}, m);
}

TEST(Attention, LongKeyRangesAndWideHeads) {
  // Several key tiles, a head dim that is a multiple of neither 8 nor 16
  // lanes, and one that fills whole vectors.
  for (std::int64_t hd : {72, 64}) {
    attention_shape s;
    s.batch = 2;
    s.q_len = s.kv_capacity = 150;
    s.heads = 4;
    s.kv_heads = 1;
    s.head_dim = hd;
    for (const test::kernel_level& level : test::kernel_levels())
      for (attention_mask m : {attention_mask::full(), attention_mask::causal(), attention_mask::block_causal(32)})
        check_attention(level, s, {0, 0}, {150, 99}, {150, 99}, m);
  }
}

TEST(Attention, SingleQueryDecoding) {
  attention_shape s;
  s.batch = 3;
  s.q_len = 1;
  s.kv_capacity = 200;
  s.heads = 4;
  s.kv_heads = 4;
  s.head_dim = 32;
  for (const test::kernel_level& level : test::kernel_levels())
    check_attention(level, s, {199, 70, 5}, {1, 1, 1}, {200, 71, 6}, attention_mask::causal());
}

TEST(Attention, QueryBlockAgainstLongerKeyRange) {
  attention_shape s;
  s.batch = 2;
  s.q_len = 4;
  s.kv_capacity = 20;
  s.heads = 4;
  s.kv_heads = 4;
  s.head_dim = 8;
  for (const test::kernel_level& level : test::kernel_levels())
    for (attention_mask m : {attention_mask::full(), attention_mask::causal(), attention_mask::block_causal(4)})
      check_attention(level, s, {8, 5}, {4, 2}, {12, 20}, m);  // queries at 8..11 over 12 keys; at 5, 6 over 20 keys
}

TEST(Attention, AQueryGivesTheSameBitsAloneOrInATileAndOverALongerCache) {
  // Every query of a 70-row canvas (block-causal, as a block diffusion model
  // attends), against computing a block of 8 of them alone over a cache
  // whose capacity and key length run past the canvas.
  const std::int64_t canvas = 70, hd = 40, heads = 6, kv_heads = 2, capacity = 128;
  std::mt19937 rng(21);
  std::normal_distribution<float> normal;
  std::vector<float> q(std::size_t(canvas * heads * hd)), k(std::size_t(capacity * kv_heads * hd)), v(k.size());
  for (auto* buf : {&q, &k, &v})
    for (float& x : *buf) x = normal(rng);
  const attention_mask mask = attention_mask::block_causal(8);
  const std::int32_t origin = 6;
  for (const test::kernel_level& level : test::kernel_levels()) {
    attention_shape whole;
    whole.q_len = canvas;
    whole.kv_capacity = capacity;
    whole.heads = heads;
    whole.kv_heads = kv_heads;
    whole.head_dim = hd;
    std::vector<float> all(q.size());
    const std::int32_t kv_all = std::int32_t(canvas);
    level.attention(q.data(), k.data(), v.data(), all.data(), whole, {nullptr, nullptr, &kv_all, nullptr, &origin}, mask);
    for (std::int32_t first : {6, 14, 38, 62}) {
      attention_shape block = whole;
      block.q_len = 8;
      const std::int32_t kv = std::int32_t(capacity) - 3, len = 8;  // keys past the block are masked anyway
      std::vector<float> part(std::size_t(8 * heads * hd));
      level.attention(q.data() + std::size_t(first) * heads * hd, k.data(), v.data(), part.data(), block,
                      {&first, &len, &kv, nullptr, &origin}, mask);
      for (std::size_t i = 0; i < part.size(); ++i)
        ASSERT_EQ(part[i], all[std::size_t(first) * heads * hd + i]) << level.name << " block at " << first << ", " << i;
    }
  }
}

TEST(Attention, ResultsDoNotDependOnTheThreadCount) {
  attention_shape s;
  s.batch = 2;
  s.q_len = s.kv_capacity = 96;
  s.heads = 8;
  s.kv_heads = 2;
  s.head_dim = 64;
  std::mt19937 rng(4);
  std::normal_distribution<float> normal;
  std::vector<float> q(std::size_t(s.batch * s.q_len * s.heads * s.head_dim)),
      k(std::size_t(s.batch * s.kv_capacity * s.kv_heads * s.head_dim)), v(k.size());
  for (auto* buf : {&q, &k, &v})
    for (float& x : *buf) x = normal(rng);
  const std::vector<std::int32_t> lengths = {96, 50};
  const int saved = cpu::thread_count();
  for (const test::kernel_level& level : test::kernel_levels()) {
    std::vector<std::vector<float>> results;
    for (int threads : {1, 2, 3}) {
      cpu::set_thread_count(threads);
      results.emplace_back(q.size());
      level.attention(q.data(), k.data(), v.data(), results.back().data(), s, {nullptr, lengths.data(), lengths.data()},
                      attention_mask::causal());
    }
    EXPECT_EQ(results[0], results[1]) << level.name;
    EXPECT_EQ(results[0], results[2]) << level.name;
  }
  cpu::set_thread_count(saved);
}

TEST(Attention, RejectsIndivisibleHeads) {
  attention_shape s;
  s.heads = 3;
  s.kv_heads = 2;
  EXPECT_THROW(cpu::attention(nullptr, nullptr, nullptr, nullptr, s, {}, attention_mask::full()), argument_error);
}

}  // namespace
}  // namespace unmask
