// Rotary embeddings (unmask/cuda/rope.hpp) against unmask::cpu::rope with its
// cosine / sine table, on the same values widened to float: float / half /
// bfloat16, head dims that take the vector and the element-by-element paths,
// misaligned pointers, positions up to 4095 and two thetas. The device's
// powf and sincosf may differ from the host's in the last ulp or two, so the
// tolerance follows the angle's size: (|x1| + |x2|) * 1e-6 * (1 + angle), the
// bound the shared-math test puts on rope_angle, plus 1e-6 relative and one
// rounding unit of T for 16-bit values. Position 0 must be the identity, bit
// for bit. Device tests skip without a GPU; the argument checks run everywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "unmask/cpu/rope.hpp"
#include "unmask/cuda/rope.hpp"

namespace unmask {
namespace {

using test::device_array;

TEST(CudaRopeHost, LauncherChecksItsArguments) {
  float x[16] = {};
  const std::int32_t positions[2] = {0, 1};
  EXPECT_EQ(cuda::rope(x, -1, 1, 8, positions, 1e4f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::rope(x, 2, 0, 8, positions, 1e4f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::rope(x, 2, 1, 7, positions, 1e4f, nullptr), cudaErrorInvalidValue);     // odd
  EXPECT_EQ(cuda::rope(x, 2, 1, 0, positions, 1e4f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::rope(x, 2, 1, 4096, positions, 1e4f, nullptr), cudaErrorInvalidValue);  // > 2048
  EXPECT_EQ(cuda::rope(x, 2, 1, 8, positions, 0.0f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::rope(x, 2, 1, 8, nullptr, 1e4f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::rope<float>(nullptr, 2, 1, 8, positions, 1e4f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::rope(x, 0, 1, 8, positions, 1e4f, nullptr), cudaSuccess);  // nothing to do
}

template <class T>
void check_rope(std::int64_t rows, std::int64_t heads, std::int64_t head_dim, float theta, bool misaligned,
                std::uint32_t seed) {
  SCOPED_TRACE(std::string(test::type_name<T>()) + " rows " + std::to_string(rows) + " heads " +
               std::to_string(heads) + " head_dim " + std::to_string(head_dim) + " theta " + std::to_string(theta) +
               (misaligned ? " misaligned" : ""));
  const std::int32_t max_position = 4095;
  const std::size_t n = std::size_t(rows * heads * head_dim);
  const std::vector<T> x = test::random_elements<T>(n, seed, 1.0f);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int32_t> any_position(0, max_position);
  std::vector<std::int32_t> positions(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r)
    positions[std::size_t(r)] = r == 0 ? 0 : r == 1 ? max_position : any_position(rng);
  std::vector<float> want = test::widen(x);
  cpu::rope(want.data(), rows, heads, head_dim, positions.data(), cpu::rope_table(max_position + 1, head_dim, theta));

  const std::size_t pad = misaligned ? 1 : 0;
  std::vector<T> padded(pad, cuda::from_float<T>(0.0f));
  padded.insert(padded.end(), x.begin(), x.end());
  device_array<T> d_x;
  device_array<std::int32_t> d_positions;
  UNMASK_CUDA_OK(d_x.upload(padded));
  UNMASK_CUDA_OK(d_positions.upload(positions));
  UNMASK_CUDA_OK(cuda::rope(d_x.data + pad, rows, heads, head_dim, d_positions.data, theta, nullptr));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<T> got;
  UNMASK_CUDA_OK(d_x.download(got));
  const double unit = std::is_same_v<T, float> ? 0.0 : test::rounding_unit<T>();
  const std::int64_t half_dim = head_dim / 2;
  int failures = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t h = 0; h < heads; ++h) {
      const std::int64_t base = (r * heads + h) * head_dim;
      for (std::int64_t i = 0; i < head_dim && failures < 10; ++i) {
        const std::int64_t pair = i % half_dim;
        const double angle = rope_angle(positions[std::size_t(r)], pair, head_dim, theta);
        const double magnitude = std::fabs(to_float(x[std::size_t(base + pair)])) +
                                 std::fabs(to_float(x[std::size_t(base + pair + half_dim)]));
        const float value = to_float(got[std::size_t(base + i) + pad]);
        const float expected = want[std::size_t(base + i)];
        const double tolerance = magnitude * 1e-6 * (1 + angle) + (1e-6 + unit) * std::fabs(expected) + 1e-7;
        const bool ok = positions[std::size_t(r)] == 0 ? test::bits_of(got[std::size_t(base + i) + pad]) ==
                                                             test::bits_of(x[std::size_t(base + i)])
                                                       : std::fabs(value - expected) <= tolerance;
        if (!ok) {
          ++failures;
          ADD_FAILURE() << "row " << r << " head " << h << " element " << i << ": " << value << " vs " << expected;
        }
      }
    }
  }
}

template <class T>
void check_shapes(std::uint32_t seed) {
  for (std::int64_t head_dim : {2, 6, 8, 16, 128, 130}) {
    for (float theta : {10000.0f, 500000.0f}) {
      check_rope<T>(5, 3, head_dim, theta, false, ++seed);
      check_rope<T>(4, 33, head_dim, theta, true, ++seed);
    }
  }
}

TEST(CudaRope, MatchesCpu) {
  UNMASK_REQUIRE_DEVICE();
  check_shapes<float>(10);
  check_shapes<half>(20);
  check_shapes<bfloat16>(30);
}

}  // namespace
}  // namespace unmask
