// RMSNorm and the fused residual add + RMSNorm (unmask/cuda/rmsnorm.hpp)
// against unmask::cpu::rmsnorm on the same values widened to float: random
// inputs (fixed seeds), activation / weight type pairs, dims that take the
// vector and the element-by-element paths, misaligned pointers, in-place
// output; outputs poisoned with NaN before each run. Output within 1e-5
// relative (plus one rounding unit of T for 16-bit outputs); the fused add's
// write-back equal bit for bit to the sum rounded to T. Device tests skip
// without a GPU; the argument checks run everywhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "unmask/cpu/rmsnorm.hpp"
#include "unmask/cuda/rmsnorm.hpp"

namespace unmask {
namespace {

using test::device_array;

TEST(CudaRmsNormHost, LaunchersCheckTheirArguments) {
  float x[8] = {}, w[8] = {}, out[8];
  EXPECT_EQ(cuda::rmsnorm(x, w, -1, 8, 1e-5f, out, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::rmsnorm(x, w, 1, 0, 1e-5f, out, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::rmsnorm(x, w, 1, 8, -1.0f, out, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::rmsnorm(x, w, 1, 8, NAN, out, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ((cuda::rmsnorm<float, float>(nullptr, w, 1, 8, 1e-5f, out, nullptr)), cudaErrorInvalidValue);
  EXPECT_EQ((cuda::rmsnorm<float, float>(x, nullptr, 1, 8, 1e-5f, out, nullptr)), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::rmsnorm(x, w, 1, 8, 1e-5f, static_cast<float*>(nullptr), nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::rmsnorm(x, w, 0, 8, 1e-5f, out, nullptr), cudaSuccess);  // nothing to do
  EXPECT_EQ(cuda::add_rmsnorm(x, x, w, 1, 8, 1e-5f, x, nullptr), cudaErrorInvalidValue);  // out == x
  EXPECT_EQ((cuda::add_rmsnorm<float, float>(x, nullptr, w, 1, 8, 1e-5f, out, nullptr)), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::add_rmsnorm(x, x, w, 1, 0, 1e-5f, out, nullptr), cudaErrorInvalidValue);
}

template <class T>
std::vector<T> with_offset(const std::vector<T>& v, bool misaligned) {
  std::vector<T> out;
  if (misaligned) out.push_back(cuda::from_float<T>(0.0f));
  out.insert(out.end(), v.begin(), v.end());
  return out;
}

template <class T, class W>
void check_rmsnorm(std::int64_t rows, std::int64_t dim, bool residual, bool misaligned, bool in_place,
                   std::uint32_t seed) {
  SCOPED_TRACE(std::string(test::type_name<T>()) + " x, " + test::type_name<W>() + " weight, rows " +
               std::to_string(rows) + " dim " + std::to_string(dim) + (residual ? " +residual" : "") +
               (misaligned ? " misaligned" : "") + (in_place ? " in place" : ""));
  const float eps = 1e-5f;
  const std::size_t n = std::size_t(rows * dim);
  const std::vector<T> x = test::random_elements<T>(n, seed, 2.0f);
  const std::vector<T> branch = test::random_elements<T>(n, seed + 1, 1.0f);
  const std::vector<W> weight = test::random_elements<W>(std::size_t(dim), seed + 2, 0.2f, 1.0f);
  // CPU: the stream after the add (rounded to T), then the norm in float.
  std::vector<T> stream = x;
  if (residual)
    for (std::size_t i = 0; i < n; ++i) stream[i] = cuda::from_float<T>(to_float(x[i]) + to_float(branch[i]));
  const std::vector<float> wide = test::widen(stream);
  std::vector<float> want(n);
  const tensor_ref weight_ref{weight.data(), dtype_of<W>::value, {dim}, "weight"};
  cpu::rmsnorm(wide.data(), rows, dim, weight_ref, eps, want.data());

  const std::size_t pad = misaligned ? 1 : 0;
  device_array<T> d_x, d_branch, d_out;
  device_array<W> d_weight;
  UNMASK_CUDA_OK(d_x.upload(with_offset(x, misaligned)));
  UNMASK_CUDA_OK(d_branch.upload(with_offset(branch, misaligned)));
  UNMASK_CUDA_OK(d_weight.upload(with_offset(weight, misaligned)));
  UNMASK_CUDA_OK(d_out.allocate(n + pad));
  UNMASK_CUDA_OK(d_out.poison());
  T* out = in_place ? d_x.data + pad : d_out.data + pad;
  if (residual)
    UNMASK_CUDA_OK(
        cuda::add_rmsnorm(d_x.data + pad, d_branch.data + pad, d_weight.data + pad, rows, dim, eps, out, nullptr));
  else
    UNMASK_CUDA_OK(cuda::rmsnorm(d_x.data + pad, d_weight.data + pad, rows, dim, eps, out, nullptr));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<T> got_out, got_x;
  UNMASK_CUDA_OK((in_place ? d_x : d_out).download(got_out));
  UNMASK_CUDA_OK(d_x.download(got_x));
  const double unit = std::is_same_v<T, float> ? 0.0 : test::rounding_unit<T>();
  int failures = 0;
  for (std::size_t i = 0; i < n && failures < 10; ++i) {
    const float got = to_float(got_out[i + pad]);
    const double tolerance = (1e-5 + unit) * std::fabs(want[i]) + 1e-6;
    if (!(std::fabs(got - want[i]) <= tolerance)) {
      ++failures;
      ADD_FAILURE() << "element " << i << ": " << got << " vs " << want[i];
    }
    if (residual && test::bits_of(got_x[i + pad]) != test::bits_of(stream[i])) {  // the written-back sum, exactly
      ++failures;
      ADD_FAILURE() << "sum " << i << ": " << to_float(got_x[i + pad]) << " vs " << to_float(stream[i]);
    }
  }
}

template <class T, class W>
void check_shapes(std::uint32_t seed) {
  for (std::int64_t rows : {1, 5, 33}) {
    for (std::int64_t dim : {1, 7, 64, 129, 4096, 4100}) {
      for (bool residual : {false, true}) {
        check_rmsnorm<T, W>(rows, dim, residual, false, false, ++seed);
        check_rmsnorm<T, W>(rows, dim, residual, true, false, ++seed);
        if (!residual) check_rmsnorm<T, W>(rows, dim, residual, false, true, ++seed);
      }
    }
  }
}

TEST(CudaRmsNorm, MatchesCpu) {
  UNMASK_REQUIRE_DEVICE();
  check_shapes<float, float>(50);
  check_shapes<float, bfloat16>(100);
  check_shapes<bfloat16, bfloat16>(200);
  check_shapes<half, half>(300);
  check_shapes<bfloat16, float>(400);
}

}  // namespace
}  // namespace unmask
