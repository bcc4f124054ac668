// The cuBLASLt GEMM engine (unmask/cuda/gemm.hpp), y = x w^T or y += x w^T,
// against double-precision dot products of the same inputs widened to float:
// every supported (X, W, Y) type triple; rows 1, 3, 37, 129 crossed with
// n 1, 17, 256, 1000 (odd and single-column outputs included), each pair with
// one of k 64, 40, 256, 4096 so every k meets every rows and every n value;
// each shape overwriting a NaN-poisoned y and accumulating into a random y0
// (which must equal y0 + x w^T, i.e. be added exactly once). One engine per
// test serves all its shapes, so the plan cache is exercised, and its plan
// count must equal the number of distinct shapes. Tolerance: 1e-5 of the
// output's sum |x||w| (+ |y0|), plus one rounding unit of a 16-bit Y; 4e-3
// with TF32 allowed. Also: the same shape run twice (across a move of the
// engine) gives bit-identical results and builds no new plan; fp32 inputs are
// not rounded to TF32 unless asked. The argument checks run everywhere,
// without a GPU and without a handle; device tests skip without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "unmask/cuda/gemm.hpp"

#define UNMASK_CUBLAS_OK(call)                                                                                        \
  do {                                                                                                                \
    const cublasStatus_t unmask_cublas_status = (call);                                                               \
    ASSERT_EQ(unmask_cublas_status, CUBLAS_STATUS_SUCCESS) << #call << ": " << cuda::to_string(unmask_cublas_status); \
  } while (0)

namespace unmask {
namespace {

using cuda::gemm_engine;
using test::device_array;

static_assert(cuda::detail::is_gemm_triple_v<bfloat16, bfloat16, bfloat16>);
static_assert(cuda::detail::is_gemm_triple_v<bfloat16, bfloat16, float>);
static_assert(cuda::detail::is_gemm_triple_v<half, half, half>);
static_assert(cuda::detail::is_gemm_triple_v<half, half, float>);
static_assert(cuda::detail::is_gemm_triple_v<float, float, float>);
static_assert(!cuda::detail::is_gemm_triple_v<bfloat16, half, float>);
static_assert(!cuda::detail::is_gemm_triple_v<float, bfloat16, float>);
static_assert(!cuda::detail::is_gemm_triple_v<bfloat16, bfloat16, half>);
static_assert(!cuda::detail::is_gemm_triple_v<float, float, bfloat16>);

// Host buffers, never dereferenced: every call below is rejected (or has
// nothing to do) before the engine would touch CUDA, and the engine has no
// handle, so the test needs no GPU.
TEST(CudaGemmHost, ChecksItsArguments) {
  alignas(16) float x[64] = {}, w[64] = {}, y[64] = {};
  alignas(16) bfloat16 xb[64] = {}, wb[64] = {}, yb[64] = {};
  gemm_engine engine;
  EXPECT_FALSE(engine.ready());
  const auto invalid = CUBLAS_STATUS_INVALID_VALUE;
  // sizes
  EXPECT_EQ(engine.matmul_nt(x, -1, 4, w, 4, y, false, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(x, std::int64_t(INT32_MAX) + 1, 4, w, 4, y, false, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(x, 2, 0, w, 4, y, false, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(x, 2, -4, w, 4, y, false, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(x, 2, std::int64_t(INT32_MAX) + 1, w, 4, y, false, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(x, 2, 4, w, 0, y, false, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(x, 2, 4, w, std::int64_t(INT32_MAX) + 1, y, false, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(x, 0, 0, w, 4, y, false, nullptr), invalid);  // sizes are checked even for 0 rows
  // null pointers
  EXPECT_EQ((engine.matmul_nt<float, float, float>(nullptr, 2, 4, w, 4, y, true, nullptr)), invalid);
  EXPECT_EQ((engine.matmul_nt<float, float, float>(x, 2, 4, nullptr, 4, y, true, nullptr)), invalid);
  EXPECT_EQ((engine.matmul_nt<float, float, float>(x, 2, 4, w, 4, nullptr, true, nullptr)), invalid);
  // 16-byte alignment
  EXPECT_EQ(engine.matmul_nt(x + 1, 2, 4, w, 4, y, false, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(x, 2, 4, w + 2, 4, y, false, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(x, 2, 4, w, 4, y + 3, false, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(xb + 4, 2, 8, wb, 8, yb, false, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(xb, 2, 8, wb, 8, y + 1, false, nullptr), invalid);
  // y overlapping x or w
  EXPECT_EQ(engine.matmul_nt(x, 2, 4, w, 4, x, false, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(x, 4, 8, w, 4, x + 16, false, nullptr), invalid);  // x is 32 floats, y starts at 16
  EXPECT_EQ(engine.matmul_nt(x, 2, 4, w, 4, w + 4, true, nullptr), invalid);
  EXPECT_EQ(engine.matmul_nt(xb, 2, 8, wb, 8, reinterpret_cast<float*>(wb), false, nullptr), invalid);
  // nothing to do: success without looking at the pointers or the handle
  EXPECT_EQ((engine.matmul_nt<float, float, float>(nullptr, 0, 4, nullptr, 4, nullptr, false, nullptr)),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ((engine.prepare<half, half, half>(0, 8, 8, false)), CUBLAS_STATUS_SUCCESS);
  // valid arguments, but no handle
  EXPECT_EQ(engine.matmul_nt(x, 2, 4, w, 4, y, false, nullptr), CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_EQ(engine.matmul_nt(xb, 2, 8, wb, 8, yb, true, nullptr), CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_EQ(engine.matmul_nt(x + 4, 2, 4, w, 4, x + 12, false, nullptr), CUBLAS_STATUS_NOT_INITIALIZED);  // adjacent
  EXPECT_EQ((engine.prepare<bfloat16, bfloat16, float>(2, 8, 8, false)), CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_EQ((engine.prepare<float, float, float>(2, 0, 8, false)), invalid);
  EXPECT_EQ((engine.prepare<float, float, float>(-1, 8, 8, false)), invalid);
  EXPECT_EQ(engine.plan_count(), 0u);
  // an empty engine moves and releases cleanly
  gemm_engine moved(std::move(engine));
  EXPECT_FALSE(moved.ready());
  moved.release();
  EXPECT_STREQ(cuda::to_string(CUBLAS_STATUS_SUCCESS), "CUBLAS_STATUS_SUCCESS");
  EXPECT_STREQ(cuda::to_string(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE");
  EXPECT_STREQ(cuda::to_string(CUBLAS_STATUS_NOT_SUPPORTED), "CUBLAS_STATUS_NOT_SUPPORTED");
  EXPECT_STREQ(cuda::to_string(cublasStatus_t(12345)), "unknown cublasStatus_t");
}

// One case: inputs, the existing y when accumulating, and the reference.
template <class X, class Y>
struct gemm_problem {
  std::int64_t rows = 0, n = 0, k = 0;
  bool accumulate = false;
  std::vector<X> x, w;       // (rows, k), (n, k)
  std::vector<Y> y0;         // (rows, n), when accumulating
  std::vector<double> want;  // y0 + x w^T, or x w^T
  std::vector<double> scale;  // sum_i |x[r, i]| |w[j, i]| (+ |y0[r, j]|): what the error is relative to
};

template <class X, class Y>
gemm_problem<X, Y> make_problem(std::int64_t rows, std::int64_t n, std::int64_t k, bool accumulate,
                                std::uint32_t seed) {
  gemm_problem<X, Y> p;
  p.rows = rows;
  p.n = n;
  p.k = k;
  p.accumulate = accumulate;
  p.x = test::random_elements<X>(std::size_t(rows * k), seed, 1.0f);
  p.w = test::random_elements<X>(std::size_t(n * k), seed + 1, 0.1f);
  if (accumulate) p.y0 = test::random_elements<Y>(std::size_t(rows * n), seed + 2, 1.0f);
  const std::vector<float> x = test::widen(p.x), w = test::widen(p.w), y0 = test::widen(p.y0);
  p.want.resize(std::size_t(rows * n));
  p.scale.resize(std::size_t(rows * n));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < n; ++j) {
      double dot = 0.0, magnitude = 0.0;
      for (std::int64_t i = 0; i < k; ++i) {
        const double product = double(x[std::size_t(r * k + i)]) * double(w[std::size_t(j * k + i)]);
        dot += product;
        magnitude += std::fabs(product);
      }
      const std::size_t at = std::size_t(r * n + j);
      const double existing = accumulate ? double(y0[at]) : 0.0;
      p.want[at] = existing + dot;
      p.scale[at] = magnitude + std::fabs(existing);
    }
  }
  return p;
}

// Runs the case on the device; a non-accumulating y is poisoned (NaN) first.
template <class X, class Y>
void run_on_device(gemm_engine& engine, const gemm_problem<X, Y>& p, std::vector<Y>& got) {
  device_array<X> d_x, d_w;
  device_array<Y> d_y;
  UNMASK_CUDA_OK(d_x.upload(p.x));
  UNMASK_CUDA_OK(d_w.upload(p.w));
  if (p.accumulate) {
    UNMASK_CUDA_OK(d_y.upload(p.y0));
  } else {
    UNMASK_CUDA_OK(d_y.allocate(std::size_t(p.rows * p.n)));
    UNMASK_CUDA_OK(d_y.poison());
  }
  UNMASK_CUBLAS_OK(engine.matmul_nt(d_x.data, p.rows, p.k, d_w.data, p.n, d_y.data, p.accumulate, nullptr));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  UNMASK_CUDA_OK(d_y.download(got));
}

template <class X, class Y>
void expect_close(const gemm_problem<X, Y>& p, const std::vector<Y>& got, double sum_tolerance) {
  ASSERT_EQ(got.size(), p.want.size());
  const double unit = std::is_same_v<Y, float> ? 0.0 : test::rounding_unit<Y>();
  int failures = 0;
  for (std::size_t i = 0; i < got.size() && failures < 10; ++i) {
    const double value = to_float(got[i]);
    const double tolerance = sum_tolerance * p.scale[i] + unit * std::fabs(p.want[i]) + 1e-7;
    if (!(std::fabs(value - p.want[i]) <= tolerance)) {  // NaN (an unwritten, poisoned y) fails too
      ++failures;
      ADD_FAILURE() << "y[" << std::int64_t(i) / p.n << ", " << std::int64_t(i) % p.n << "] = " << value
                    << ", want " << p.want[i] << " (tolerance " << tolerance << ")";
    }
  }
}

std::string describe(const char* types, std::int64_t rows, std::int64_t n, std::int64_t k, bool accumulate) {
  return std::string(types) + " rows " + std::to_string(rows) + " n " + std::to_string(n) + " k " +
         std::to_string(k) + (accumulate ? " y +=" : " y =");
}

template <class X, class Y>
std::string triple_name() {
  return std::string(test::type_name<X>()) + " x, " + test::type_name<X>() + " w, " + test::type_name<Y>() + " y";
}

// Every rows x n pair, with k cycling so that each k meets each rows and
// each n value, overwriting and accumulating; one engine for all of them.
template <class X, class Y>
void check_all_shapes(std::uint32_t seed) {
  gemm_engine engine;
  UNMASK_CUBLAS_OK(engine.create());
  const std::int64_t row_counts[] = {1, 3, 37, 129};
  const std::int64_t widths[] = {1, 17, 256, 1000};
  const std::int64_t depths[] = {64, 40, 256, 4096};
  std::size_t shapes = 0;
  for (int ri = 0; ri < 4; ++ri) {
    for (int ni = 0; ni < 4; ++ni) {
      const std::int64_t rows = row_counts[ri], n = widths[ni], k = depths[(ri + ni) % 4];
      for (bool accumulate : {false, true}) {
        SCOPED_TRACE(describe(triple_name<X, Y>().c_str(), rows, n, k, accumulate));
        const gemm_problem<X, Y> p = make_problem<X, Y>(rows, n, k, accumulate, seed += 3);
        std::vector<Y> got;
        ASSERT_NO_FATAL_FAILURE(run_on_device(engine, p, got));
        expect_close(p, got, 1e-5);
        ++shapes;
        EXPECT_EQ(engine.plan_count(), shapes);  // one new plan per distinct shape
      }
    }
  }
}

TEST(CudaGemm, Bf16InputsBf16Output) {
  UNMASK_REQUIRE_DEVICE();
  check_all_shapes<bfloat16, bfloat16>(100);
}

TEST(CudaGemm, Bf16InputsF32Output) {
  UNMASK_REQUIRE_DEVICE();
  check_all_shapes<bfloat16, float>(200);
}

TEST(CudaGemm, F16InputsF16Output) {
  UNMASK_REQUIRE_DEVICE();
  check_all_shapes<half, half>(300);
}

TEST(CudaGemm, F16InputsF32Output) {
  UNMASK_REQUIRE_DEVICE();
  check_all_shapes<half, float>(400);
}

TEST(CudaGemm, F32Throughout) {
  UNMASK_REQUIRE_DEVICE();
  check_all_shapes<float, float>(500);
}

// Runs the shape, moves the engine, runs it again: bit-identical output, and
// the second run finds its plan in the cache.
template <class X, class Y>
void check_repeatable(std::int64_t rows, std::int64_t n, std::int64_t k, bool accumulate, std::uint32_t seed) {
  SCOPED_TRACE(describe(triple_name<X, Y>().c_str(), rows, n, k, accumulate));
  gemm_engine first;
  UNMASK_CUBLAS_OK(first.create());
  const gemm_problem<X, Y> p = make_problem<X, Y>(rows, n, k, accumulate, seed);
  std::vector<Y> once, twice;
  ASSERT_NO_FATAL_FAILURE(run_on_device(first, p, once));
  expect_close(p, once, 1e-5);
  EXPECT_EQ(first.plan_count(), 1u);
  gemm_engine second(std::move(first));
  EXPECT_FALSE(first.ready());  // NOLINT(bugprone-use-after-move): a moved-from engine is empty
  ASSERT_NO_FATAL_FAILURE(run_on_device(second, p, twice));
  EXPECT_EQ(second.plan_count(), 1u);
  ASSERT_EQ(once.size(), twice.size());
  int differences = 0;
  for (std::size_t i = 0; i < once.size() && differences < 10; ++i) {
    if (test::bits_of(once[i]) != test::bits_of(twice[i])) {
      ++differences;
      ADD_FAILURE() << "element " << i << ": " << to_float(once[i]) << " then " << to_float(twice[i]);
    }
  }
}

TEST(CudaGemm, SameShapeTwiceIsBitIdentical) {
  UNMASK_REQUIRE_DEVICE();
  check_repeatable<bfloat16, bfloat16>(37, 1000, 4096, false, 600);
  check_repeatable<bfloat16, float>(1, 256, 4096, true, 610);  // few outputs, deep k: split-K territory
  check_repeatable<half, float>(3, 17, 4096, false, 620);
  check_repeatable<float, float>(1, 1000, 4096, false, 630);
  check_repeatable<half, half>(129, 256, 256, true, 640);
}

// x = 1 + 2^-15 (not a TF32 value: TF32 keeps 10 fraction bits), w = 1, k = 64:
// every partial sum is exact in fp32, so y = 64 + 2^-9 exactly, whatever the
// summation order; rounding x to TF32 would give 64.
TEST(CudaGemm, F32InputsAreNotRoundedToTf32) {
  UNMASK_REQUIRE_DEVICE();
  gemm_engine engine;
  UNMASK_CUBLAS_OK(engine.create());
  const std::int64_t rows = 3, n = 17, k = 64;
  device_array<float> d_x, d_w, d_y;
  UNMASK_CUDA_OK(d_x.upload(std::vector<float>(std::size_t(rows * k), 1.0f + 0x1p-15f)));
  UNMASK_CUDA_OK(d_w.upload(std::vector<float>(std::size_t(n * k), 1.0f)));
  UNMASK_CUDA_OK(d_y.allocate(std::size_t(rows * n)));
  UNMASK_CUDA_OK(d_y.poison());
  UNMASK_CUBLAS_OK(engine.matmul_nt(d_x.data, rows, k, d_w.data, n, d_y.data, false, nullptr));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<float> got;
  UNMASK_CUDA_OK(d_y.download(got));
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], 64.0f + 0x1p-9f) << "element " << i;
}

// With TF32 allowed the inputs may lose 13 fraction bits: ~1e-3 of sum |x||w|.
TEST(CudaGemm, F32WithTf32Allowed) {
  UNMASK_REQUIRE_DEVICE();
  gemm_engine engine;
  UNMASK_CUBLAS_OK(engine.create(cuda::gemm_default_workspace_bytes, true));
  EXPECT_TRUE(engine.allow_tf32());
  std::uint32_t seed = 700;
  for (std::int64_t rows : {1, 37}) {
    for (std::int64_t k : {40, 4096}) {
      SCOPED_TRACE(describe("tf32", rows, 256, k, false));
      const gemm_problem<float, float> p = make_problem<float, float>(rows, 256, k, false, seed += 3);
      std::vector<float> got;
      ASSERT_NO_FATAL_FAILURE(run_on_device(engine, p, got));
      expect_close(p, got, 4e-3);
    }
  }
}

}  // namespace
}  // namespace unmask
