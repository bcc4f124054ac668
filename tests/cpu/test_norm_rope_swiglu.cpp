// Elementwise kernels at every instruction-set level this CPU runs, against
// their formulas evaluated in double.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "cpu/kernel_levels.hpp"
#include "unmask/cpu/embedding.hpp"
#include "unmask/cpu/rmsnorm.hpp"
#include "unmask/cpu/rope.hpp"
#include "unmask/cpu/swiglu.hpp"

namespace unmask {
namespace {

using test::cpu_levels;

TEST(RmsNorm, MatchesFormula) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  const std::int64_t rows = 7, dim = 129;
  std::vector<float> x(rows * dim), out(x.size());
  std::vector<bfloat16> w(dim);
  for (float& v : x) v = 3 * normal(rng);
  for (auto& v : w) v = to_bfloat16(1 + 0.1f * normal(rng));
  const float eps = 1e-5f;
  for (cpu::isa_level level : cpu_levels()) {
  cpu::rmsnorm(x.data(), rows, dim, tensor_ref{w.data(), dtype::bf16, {dim}, "w"}, eps, out.data(), level);
  for (std::int64_t r = 0; r < rows; ++r) {
    double ms = 0;
    for (std::int64_t i = 0; i < dim; ++i) ms += double(x[r * dim + i]) * x[r * dim + i];
    const double inv = 1 / std::sqrt(ms / dim + eps);
    for (std::int64_t i = 0; i < dim; ++i)
      EXPECT_NEAR(out[r * dim + i], x[r * dim + i] * inv * to_float(w[i]), 1e-5 * (1 + std::fabs(out[r * dim + i])))
          << cpu::isa_name(level);
  }
  }
}

TEST(Rope, RotatesHalvesByPositionDependentAngles) {
  const std::int64_t rows = 5, heads = 3, hd = 8;
  const float theta = 10000.0f;
  std::vector<float> x(rows * heads * hd), original;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  original = x;
  const std::vector<std::int32_t> positions = {0, 3, 7, 1, 40};
  for (cpu::isa_level level : cpu_levels()) {
  x = original;
  cpu::rope(x.data(), rows, heads, hd, positions.data(), cpu::rope_table(64, hd, theta), level);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t h = 0; h < heads; ++h) {
      const float* a = &original[(r * heads + h) * hd];
      const float* b = &x[(r * heads + h) * hd];
      for (std::int64_t i = 0; i < hd / 2; ++i) {
        const double angle = positions[r] / std::pow(double(theta), 2.0 * double(i) / double(hd));
        EXPECT_NEAR(b[i], a[i] * std::cos(angle) - a[i + hd / 2] * std::sin(angle), 1e-5);
        EXPECT_NEAR(b[i + hd / 2], a[i + hd / 2] * std::cos(angle) + a[i] * std::sin(angle), 1e-5);
      }
    }
  }
  // Position 0 is the identity.
  for (std::int64_t i = 0; i < heads * hd; ++i) EXPECT_EQ(x[i], original[i]);
  }
}

TEST(Rope, WideHeadsAndAPartialVector) {
  // head_dim 68: 34 pairs, a vector tail at every width.
  const std::int64_t rows = 3, heads = 2, hd = 68;
  std::vector<float> original(rows * heads * hd);
  std::mt19937 rng(6);
  std::normal_distribution<float> normal;
  for (float& v : original) v = normal(rng);
  const std::vector<std::int32_t> positions = {5, 100, 31};
  const auto table = cpu::rope_table(128, hd, 500000.0f);
  for (cpu::isa_level level : cpu_levels()) {
    std::vector<float> x = original;
    cpu::rope(x.data(), rows, heads, hd, positions.data(), table, level);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t h = 0; h < heads; ++h)
        for (std::int64_t i = 0; i < hd / 2; ++i) {
          const float* a = &original[(r * heads + h) * hd];
          const float* b = &x[(r * heads + h) * hd];
          const double angle = positions[r] / std::pow(500000.0, 2.0 * double(i) / double(hd));
          EXPECT_NEAR(b[i], a[i] * std::cos(angle) - a[i + hd / 2] * std::sin(angle), 2e-5) << cpu::isa_name(level);
          EXPECT_NEAR(b[i + hd / 2], a[i + hd / 2] * std::cos(angle) + a[i] * std::sin(angle), 2e-5);
        }
  }
}

TEST(SwiGlu, MatchesFormula) {
  // Whole vectors and a tail, from deep negative (exp overflows to inf) to large.
  std::vector<float> gate, up;
  for (int i = 0; i < 37; ++i) {
    gate.push_back(-100.0f + 5.5f * float(i));
    up.push_back(0.25f * float(i % 7) - 0.5f);
  }
  gate[3] = 0.0f;
  gate[4] = -0.0f;
  for (cpu::isa_level level : cpu_levels()) {
    std::vector<float> out(gate.size());
    cpu::swiglu(gate.data(), up.data(), std::int64_t(gate.size()), out.data(), level);
    for (std::size_t i = 0; i < gate.size(); ++i) {
      const double g = gate[i];
      const double expected = g / (1 + std::exp(-g)) * up[i];
      EXPECT_NEAR(out[i], expected, 1e-6 * (1 + std::fabs(expected))) << cpu::isa_name(level) << " gate " << g;
    }
  }
}

TEST(Exp, VectorExpIsAccurateAndExactAtTheEdges) {
  // The kernels' exp over the float range used by softmax and SiLU: relative
  // error below 4 ulp, exactly 0 for -inf and below the normal range.
  using ops = cpu::isa_portable::ops;
  for (float x = -87.0f; x < 88.0f; x += 0.37f) {
    const float y = ops::lane(cpu::isa_portable::vexp<ops>(ops::set1(x)), 0);
    EXPECT_NEAR(y, std::exp(double(x)), 4 * 1.2e-7 * std::exp(double(x))) << x;
  }
  EXPECT_EQ(ops::lane(cpu::isa_portable::vexp<ops>(ops::set1(-std::numeric_limits<float>::infinity())), 0), 0.0f);
  EXPECT_EQ(ops::lane(cpu::isa_portable::vexp<ops>(ops::set1(-100.0f)), 0), 0.0f);
  EXPECT_EQ(ops::lane(cpu::isa_portable::vexp<ops>(ops::set1(0.0f)), 0), 1.0f);
}

TEST(Embedding, GathersAndWidensRows) {
  std::vector<bfloat16> table;
  for (int i = 0; i < 12; ++i) table.push_back(to_bfloat16(float(i) * 0.5f));  // (4, 3)
  const std::int32_t tokens[3] = {2, 0, 2};
  for (cpu::isa_level level : cpu_levels()) {
    float out[9];
    cpu::embedding(tokens, 3, tensor_ref{table.data(), dtype::bf16, {4, 3}, "wte"}, out, level);
    EXPECT_EQ(out[0], 3.0f);
    EXPECT_EQ(out[2], 4.0f);
    EXPECT_EQ(out[3], 0.0f);
    EXPECT_EQ(out[8], 4.0f);
  }
  // A row wider than a vector, f16 and f32.
  std::vector<half> wide16;
  std::vector<float> wide32;
  for (int i = 0; i < 2 * 37; ++i) {
    wide16.push_back(to_half(float(i) * 0.25f));
    wide32.push_back(float(i) * 0.25f);
  }
  const std::int32_t one[1] = {1};
  for (cpu::isa_level level : cpu_levels()) {
    float a[37], b[37];
    cpu::embedding(one, 1, tensor_ref{wide16.data(), dtype::f16, {2, 37}, "wte"}, a, level);
    cpu::embedding(one, 1, tensor_ref{wide32.data(), dtype::f32, {2, 37}, "wte"}, b, level);
    for (int i = 0; i < 37; ++i) {
      EXPECT_EQ(a[i], float(37 + i) * 0.25f) << cpu::isa_name(level);
      EXPECT_EQ(b[i], float(37 + i) * 0.25f) << cpu::isa_name(level);
    }
  }
}

}  // namespace
}  // namespace unmask
