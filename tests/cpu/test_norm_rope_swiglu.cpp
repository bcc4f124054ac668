// Elementwise kernels against their formulas evaluated in double.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "unmask/cpu/embedding.hpp"
#include "unmask/cpu/rmsnorm.hpp"
#include "unmask/cpu/rope.hpp"
#include "unmask/cpu/swiglu.hpp"

namespace unmask {
namespace {

TEST(RmsNorm, MatchesFormula) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  const std::int64_t rows = 7, dim = 129;
  std::vector<float> x(rows * dim), out(x.size());
  std::vector<bfloat16> w(dim);
  for (float& v : x) v = 3 * normal(rng);
  for (auto& v : w) v = to_bfloat16(1 + 0.1f * normal(rng));
  const float eps = 1e-5f;
  cpu::rmsnorm(x.data(), rows, dim, tensor_ref{w.data(), dtype::bf16, {dim}, "w"}, eps, out.data());
  for (std::int64_t r = 0; r < rows; ++r) {
    double ms = 0;
    for (std::int64_t i = 0; i < dim; ++i) ms += double(x[r * dim + i]) * x[r * dim + i];
    const double inv = 1 / std::sqrt(ms / dim + eps);
    for (std::int64_t i = 0; i < dim; ++i)
      EXPECT_NEAR(out[r * dim + i], x[r * dim + i] * inv * to_float(w[i]), 1e-5 * (1 + std::fabs(out[r * dim + i])));
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
  cpu::rope(x.data(), rows, heads, hd, positions.data(), cpu::rope_table(64, hd, theta));
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

TEST(SwiGlu, MatchesFormula) {
  std::vector<float> gate = {-20.0f, -1.0f, 0.0f, 0.5f, 3.0f, 30.0f}, up = {1, 2, 3, 4, 5, 6}, out(6);
  cpu::swiglu(gate.data(), up.data(), 6, out.data());
  for (int i = 0; i < 6; ++i) {
    const double g = gate[i];
    EXPECT_NEAR(out[i], g / (1 + std::exp(-g)) * up[i], 1e-6 * (1 + std::fabs(out[i])));
  }
}

TEST(Embedding, GathersAndWidensRows) {
  std::vector<bfloat16> table;
  for (int i = 0; i < 12; ++i) table.push_back(to_bfloat16(float(i) * 0.5f));  // (4, 3)
  const std::int32_t tokens[3] = {2, 0, 2};
  float out[9];
  cpu::embedding(tokens, 3, tensor_ref{table.data(), dtype::bf16, {4, 3}, "wte"}, out);
  EXPECT_EQ(out[0], 3.0f);
  EXPECT_EQ(out[2], 4.0f);
  EXPECT_EQ(out[3], 0.0f);
  EXPECT_EQ(out[8], 4.0f);
}

}  // namespace
}  // namespace unmask
