// The CPU bias add (unmask/cpu/bias.hpp) at every instruction-set level the
// machine has, against a scalar loop: b32, bh16 and bb16 biases, widths with
// ragged vector tails, many rows (the parallel split). Exact: one fp32 add
// per element either way.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "unmask/core/dtype.hpp"
#include "unmask/cpu/bias.hpp"

namespace unmask {
namespace {

TEST(CpuBias, EqualsTheScalarLoopAtEveryLevel) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const std::int64_t n : {1, 7, 16, 33, 130}) {
    const std::int64_t rows = 37;
    std::vector<float> y(std::size_t(rows * n));
    for (float& v : y) v = normal(rng);
    std::vector<float> b32(static_cast<std::size_t>(n));
    std::vector<bfloat16> bb16(static_cast<std::size_t>(n));
    std::vector<half> bh16(static_cast<std::size_t>(n));
    for (std::int64_t j = 0; j < n; ++j) {
      b32[std::size_t(j)] = normal(rng);
      bb16[std::size_t(j)] = to_bfloat16(b32[std::size_t(j)]);
      bh16[std::size_t(j)] = to_half(b32[std::size_t(j)]);
    }
    const tensor_ref biases[3] = {{b32.data(), dtype::f32, {n}, "f32"},
                                  {bb16.data(), dtype::bf16, {n}, "bf16"},
                                  {bh16.data(), dtype::f16, {n}, "f16"}};
    for (const tensor_ref& bias : biases) {
      std::vector<float> want = y;
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < n; ++j)
          want[std::size_t(r * n + j)] += load_as_float(bias.data, bias.type, std::size_t(j));
      for (const cpu::isa_level level : {cpu::isa_level::portable, cpu::isa_level::avx2, cpu::isa_level::avx512}) {
        if (level > cpu::detected_isa()) continue;
        std::vector<float> got = y;
        cpu::add_bias(got.data(), rows, n, bias, level);
        EXPECT_EQ(got, want) << bias.name << " n " << n << " at " << cpu::isa_name(level);
      }
    }
  }
}

}  // namespace
}  // namespace unmask
