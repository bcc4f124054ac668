// Conversions between float and the 16-bit types, checked exhaustively where
// the domain is small and against independent references elsewhere: the
// compiler's own _Float16 (IEEE binary16 with round-to-nearest-even) and, for
// bfloat16, an exact search for the nearest representable value in double.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

#include "unmask/core/dtype.hpp"

namespace unmask {
namespace {

TEST(Dtype, SizesAndNames) {
  EXPECT_EQ(dtype_size(dtype::bf16), 2u);
  EXPECT_EQ(dtype_size(dtype::f32), 4u);
  EXPECT_EQ(dtype_size(dtype::i64), 8u);
  EXPECT_EQ(dtype_size(dtype::f8_e4m3), 1u);
  dtype t{};
  for (const char* name : {"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64",
                           "F8_E4M3", "F8_E5M2"}) {
    ASSERT_TRUE(parse_dtype(name, t)) << name;
    EXPECT_STREQ(dtype_name(t), name);
  }
  EXPECT_FALSE(parse_dtype("F128", t));
  EXPECT_FALSE(parse_dtype("bf16", t));  // names are case-sensitive, as in safetensors
}

TEST(Half, EveryBitPatternRoundTrips) {
  for (std::uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const half h{std::uint16_t(bits)};
    const float f = to_float(h);
    const bool nan = (bits & 0x7c00u) == 0x7c00u && (bits & 0x3ffu);
    if (nan) {
      EXPECT_TRUE(std::isnan(f)) << bits;
      EXPECT_TRUE(std::isnan(to_float(to_half(f))));
      continue;
    }
    EXPECT_EQ(to_half(f).bits, bits) << "bits " << bits << " value " << f;
  }
}

#if defined(__FLT16_MAX__)
TEST(Half, MatchesCompilerFloat16OnRandomAndEdgeFloats) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  std::uniform_int_distribution<std::uint32_t> near_half_range(0x33000000u, 0x47800000u);  // 2^-25 .. 2^16
  auto check = [](float f) {
    const _Float16 reference = static_cast<_Float16>(f);
    std::uint16_t expected;
    std::memcpy(&expected, &reference, 2);
    const half got = to_half(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(to_float(got)));
      return;
    }
    EXPECT_EQ(got.bits, expected) << "float " << f;
  };
  for (int i = 0; i < 200000; ++i) check(bits_float(any_bits(rng)));
  for (int i = 0; i < 200000; ++i) check(bits_float(near_half_range(rng) | (any_bits(rng) & 0x80000000u)));
  for (float f : {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e9f, 5.9604645e-8f, 2.9802322e-8f, 2.98023259e-8f,
                  6.1035156e-5f, 6.1035152e-5f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min()})
    check(f);
}
#endif

// The bfloat16 nearest to f, ties to even, found by brute force in double.
std::uint16_t nearest_bfloat16(float f) {
  const std::uint32_t u = float_bits(f);
  const std::uint16_t down = std::uint16_t(u >> 16);  // truncation: toward zero in magnitude
  const std::uint16_t up = std::uint16_t(down + 1);
  const double x = f;
  const double a = to_float(bfloat16{down}), b = to_float(bfloat16{up});
  const double da = std::fabs(x - a), db = std::fabs(x - b);
  if (da < db) return down;
  if (db < da) return up;
  return (down & 1) ? up : down;
}

TEST(BFloat16, RoundsToNearestEven) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  int checked = 0;
  for (int i = 0; i < 500000; ++i) {
    const float f = bits_float(any_bits(rng));
    if (std::isnan(f) || std::isinf(f)) continue;
    if (std::fabs(f) >= 3.3895313e38f) continue;  // near FLT_MAX the upper neighbour is inf: checked below
    ASSERT_EQ(to_bfloat16(f).bits, nearest_bfloat16(f)) << f;
    ++checked;
  }
  EXPECT_GT(checked, 400000);
  // Exact ties go to the even neighbour.
  EXPECT_EQ(to_bfloat16(bits_float(0x3f808000u)).bits, 0x3f80u);  // 1 + 2^-8: tie, 0x3f80 is even
  EXPECT_EQ(to_bfloat16(bits_float(0x3f818000u)).bits, 0x3f82u);  // tie, rounds up to even
  EXPECT_EQ(to_bfloat16(bits_float(0x3f808001u)).bits, 0x3f81u);  // just above the tie
  // Overflow to infinity, infinities and NaN.
  EXPECT_EQ(to_bfloat16(std::numeric_limits<float>::max()).bits, 0x7f80u);
  EXPECT_EQ(to_bfloat16(std::numeric_limits<float>::infinity()).bits, 0x7f80u);
  EXPECT_EQ(to_bfloat16(-std::numeric_limits<float>::infinity()).bits, 0xff80u);
  EXPECT_TRUE(std::isnan(to_float(to_bfloat16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(to_float(to_bfloat16(bits_float(0x7f800001u)))));  // signalling NaN stays NaN
  // Every bfloat16 converts to float and back unchanged.
  for (std::uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const float f = to_float(bfloat16{std::uint16_t(bits)});
    if (std::isnan(f)) continue;
    ASSERT_EQ(to_bfloat16(f).bits, bits);
  }
}

TEST(Dtype, LoadAsFloatReadsEachComputeType) {
  const bfloat16 b[2] = {to_bfloat16(1.5f), to_bfloat16(-2.25f)};
  const half h[2] = {to_half(0.5f), to_half(3.0f)};
  const float f[2] = {7.0f, 8.0f};
  EXPECT_EQ(load_as_float(b, dtype::bf16, 1), -2.25f);
  EXPECT_EQ(load_as_float(h, dtype::f16, 1), 3.0f);
  EXPECT_EQ(load_as_float(f, dtype::f32, 0), 7.0f);
}

}  // namespace
}  // namespace unmask
