// SwiGLU (unmask/cuda/swiglu.hpp) against unmask::cpu::swiglu on the same
// values widened to float: float / half / bfloat16, lengths that leave a
// ragged tail after the 16-byte vectors, misaligned pointers, the output
// written over the gate; outputs poisoned with NaN before each run. Within
// 1e-5 relative (the device's expf is within 2 ulp of the host's) plus one
// rounding unit of T for 16-bit outputs. Device tests skip without a GPU; the
// argument checks run everywhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "unmask/cpu/swiglu.hpp"
#include "unmask/cuda/swiglu.hpp"

namespace unmask {
namespace {

using test::device_array;

TEST(CudaSwiGluHost, LauncherChecksItsArguments) {
  float a[4] = {}, b[4] = {}, out[4];
  EXPECT_EQ(cuda::swiglu(a, b, -1, out, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::swiglu<float>(nullptr, b, 4, out, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::swiglu<float>(a, nullptr, 4, out, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::swiglu<float>(a, b, 4, nullptr, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::swiglu(a, b, 0, out, nullptr), cudaSuccess);  // nothing to do
}

template <class T>
void check_swiglu(std::int64_t n, bool misaligned, bool in_place, std::uint32_t seed) {
  SCOPED_TRACE(std::string(test::type_name<T>()) + " n " + std::to_string(n) + (misaligned ? " misaligned" : "") +
               (in_place ? " in place" : ""));
  const std::vector<T> gate = test::random_elements<T>(std::size_t(n), seed, 3.0f);
  const std::vector<T> up = test::random_elements<T>(std::size_t(n), seed + 1, 1.0f);
  const std::vector<float> wide_gate = test::widen(gate), wide_up = test::widen(up);
  std::vector<float> want(static_cast<std::size_t>(n));
  cpu::swiglu(wide_gate.data(), wide_up.data(), n, want.data());

  const std::size_t pad = misaligned ? 1 : 0;
  std::vector<T> padded_gate(pad, cuda::from_float<T>(0.0f)), padded_up = padded_gate;
  padded_gate.insert(padded_gate.end(), gate.begin(), gate.end());
  padded_up.insert(padded_up.end(), up.begin(), up.end());
  device_array<T> d_gate, d_up, d_out;
  UNMASK_CUDA_OK(d_gate.upload(padded_gate));
  UNMASK_CUDA_OK(d_up.upload(padded_up));
  UNMASK_CUDA_OK(d_out.allocate(std::size_t(n) + pad));
  UNMASK_CUDA_OK(d_out.poison());
  T* out = in_place ? d_gate.data + pad : d_out.data + pad;
  UNMASK_CUDA_OK(cuda::swiglu(d_gate.data + pad, d_up.data + pad, n, out, nullptr));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<T> got;
  UNMASK_CUDA_OK((in_place ? d_gate : d_out).download(got));
  const double unit = std::is_same_v<T, float> ? 0.0 : test::rounding_unit<T>();
  int failures = 0;
  for (std::int64_t i = 0; i < n && failures < 10; ++i) {
    const float value = to_float(got[std::size_t(i) + pad]), expected = want[std::size_t(i)];
    if (!(std::fabs(value - expected) <= (1e-5 + unit) * std::fabs(expected) + 1e-7)) {
      ++failures;
      ADD_FAILURE() << "element " << i << ": " << value << " vs " << expected;
    }
  }
}

template <class T>
void check_lengths(std::uint32_t seed) {
  for (std::int64_t n : {1, 7, 8, 9, 1000, 1001, 12288 * 5 + 3, 65536 * 9 + 5}) {
    check_swiglu<T>(n, false, false, ++seed);
    check_swiglu<T>(n, true, false, ++seed);
    check_swiglu<T>(n, false, true, ++seed);
  }
}

TEST(CudaSwiGlu, MatchesCpu) {
  UNMASK_REQUIRE_DEVICE();
  check_lengths<float>(10);
  check_lengths<half>(20);
  check_lengths<bfloat16>(30);
}

}  // namespace
}  // namespace unmask
