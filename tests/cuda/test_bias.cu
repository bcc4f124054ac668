// The bias add (unmask/cuda/bias.hpp) against unmask::cpu::add_bias on the
// same values: activations and biases in float / half / bfloat16, row widths
// that are not multiples of anything, rows outside the grid's first pass.
// The device adds in fp32 and rounds once to T, as the CPU adds in fp32: equal
// within one rounding unit of T (exactly for float). Device tests skip
// without a GPU; the argument checks run everywhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "unmask/cpu/bias.hpp"
#include "unmask/cuda/bias.hpp"

namespace unmask {
namespace {

using test::device_array;

TEST(CudaBiasHost, LauncherChecksItsArguments) {
  float y[4] = {}, b[2] = {};
  EXPECT_EQ(cuda::add_bias(y, b, -1, 2, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::add_bias(y, b, 2, -1, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ((cuda::add_bias<float, float>(nullptr, b, 2, 2, nullptr)), cudaErrorInvalidValue);
  EXPECT_EQ((cuda::add_bias<float, float>(y, nullptr, 2, 2, nullptr)), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::add_bias(y, b, 0, 2, nullptr), cudaSuccess);  // nothing to do
}

template <class T, class W>
void check_bias(std::int64_t rows, std::int64_t n, std::uint32_t seed) {
  SCOPED_TRACE(std::string(test::type_name<T>()) + " + " + test::type_name<W>() + " bias, " + std::to_string(rows) +
               " x " + std::to_string(n));
  const std::vector<T> y = test::random_elements<T>(std::size_t(rows * n), seed, 2.0f);
  const std::vector<W> bias = test::random_elements<W>(std::size_t(n), seed + 1, 0.5f);
  std::vector<float> want = test::widen(y);
  const tensor_ref ref{bias.data(), dtype_of<W>::value, {n}, "bias"};
  cpu::add_bias(want.data(), rows, n, ref);

  device_array<T> d_y;
  device_array<W> d_bias;
  UNMASK_CUDA_OK(d_y.upload(y));
  UNMASK_CUDA_OK(d_bias.upload(bias));
  UNMASK_CUDA_OK(cuda::add_bias(d_y.data, d_bias.data, rows, n, nullptr));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<T> got;
  UNMASK_CUDA_OK(d_y.download(got));
  const double unit = std::is_same_v<T, float> ? 0.0 : test::rounding_unit<T>();
  int failures = 0;
  for (std::size_t i = 0; i < got.size() && failures < 10; ++i) {
    const double g = to_float(got[i]), w = want[i];
    if (!(std::fabs(g - w) <= unit * std::fabs(w) + 1e-30)) {
      ADD_FAILURE() << "element " << i << ": device " << g << ", host " << w;
      ++failures;
    }
  }
}

TEST(CudaBias, MatchesTheCpu) {
  UNMASK_REQUIRE_DEVICE();
  for (const auto& [rows, n] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {3, 17}, {7, 128}, {1025, 96}, {2, 70000}}) {
    check_bias<float, float>(rows, n, 1);
    check_bias<bfloat16, bfloat16>(rows, n, 2);
    check_bias<half, bfloat16>(rows, n, 3);
    check_bias<float, half>(rows, n, 4);
  }
}

}  // namespace
}  // namespace unmask
