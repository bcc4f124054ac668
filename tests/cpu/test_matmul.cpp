// matmul_nt against a double-precision reference, for every weight dtype,
// odd sizes that exercise every remainder path, accumulation, and a head
// truncated to fewer rows than the weight has.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "unmask/cpu/matmul.hpp"

namespace unmask {
namespace {

struct weight_storage {
  std::vector<float> f32;
  std::vector<bfloat16> bf16;
  std::vector<half> f16;
  std::vector<float> values;  // what the stored weight means, as float
};

weight_storage make_weight(std::int64_t n, std::int64_t k, dtype t, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  weight_storage w;
  for (std::int64_t i = 0; i < n * k; ++i) {
    const float v = normal(rng);
    if (t == dtype::bf16) {
      w.bf16.push_back(to_bfloat16(v));
      w.values.push_back(to_float(w.bf16.back()));
    } else if (t == dtype::f16) {
      w.f16.push_back(to_half(v));
      w.values.push_back(to_float(w.f16.back()));
    } else {
      w.f32.push_back(v);
      w.values.push_back(v);
    }
  }
  return w;
}

using matmul_fn = void (*)(const float*, std::int64_t, const tensor_ref&, std::int64_t, float*, bool);

void check_matmul(matmul_fn fn, dtype t, std::int64_t rows, std::int64_t n_weight, std::int64_t n, std::int64_t k,
                  bool accumulate) {
  std::mt19937 rng(unsigned(rows * 131 + n * 7 + k));
  weight_storage w = make_weight(n_weight, k, t, rng);
  const void* data = t == dtype::bf16 ? static_cast<const void*>(w.bf16.data())
                     : t == dtype::f16 ? static_cast<const void*>(w.f16.data())
                                       : static_cast<const void*>(w.f32.data());
  tensor_ref ref{data, t, {n_weight, k}, "w"};
  std::normal_distribution<float> normal;
  std::vector<float> x(std::size_t(rows * k)), y(std::size_t(rows * n)), y0(y.size());
  for (float& v : x) v = normal(rng);
  for (float& v : y0) v = normal(rng);
  y = y0;
  fn(x.data(), rows, ref, n, y.data(), accumulate);
  double worst = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < n; ++j) {
      double expected = accumulate ? y0[std::size_t(r * n + j)] : 0.0;
      double scale = std::fabs(expected);
      for (std::int64_t i = 0; i < k; ++i) {
        const double p = double(x[std::size_t(r * k + i)]) * w.values[std::size_t(j * k + i)];
        expected += p;
        scale += std::fabs(p);
      }
      worst = std::max(worst, std::fabs(y[std::size_t(r * n + j)] - expected) / (scale + 1e-30));
    }
  }
  // fp32 accumulation of k products: error bounded by ~k * 2^-24 relative to sum |p|.
  EXPECT_LT(worst, 1e-6 * double(std::max<std::int64_t>(k, 8)) / 8) << dtype_name(t) << " rows " << rows << " n " << n << " k " << k;
}

TEST(Matmul, PortableMatchesDoubleReference) {
  for (dtype t : {dtype::f32, dtype::bf16, dtype::f16}) {
    for (auto [rows, n, k] : {std::tuple{1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {64, 48, 128}, {5, 100, 257}}) {
      check_matmul(cpu::matmul_nt_portable, t, rows, n, n, k, false);
      check_matmul(cpu::matmul_nt_portable, t, rows, n, n, k, true);
    }
  }
}

TEST(Matmul, UsesOnlyTheFirstNRowsOfTheWeight) {
  check_matmul(cpu::matmul_nt_portable, dtype::bf16, 4, 40, 33, 24, false);
}

#if defined(UNMASK_USE_CBLAS)
TEST(Matmul, CblasMatchesDoubleReference) {
  for (dtype t : {dtype::f32, dtype::bf16, dtype::f16}) {
    for (auto [rows, n, k] : {std::tuple{1, 1, 1}, {17, 33, 65}, {5, 300, 257}}) {
      check_matmul(cpu::matmul_nt_cblas, t, rows, n, n, k, false);
      check_matmul(cpu::matmul_nt_cblas, t, rows, n, n, k, true);
    }
  }
  check_matmul(cpu::matmul_nt_cblas, dtype::bf16, 4, 300, 270, 24, false);
}
#endif

TEST(Matmul, RowResultsDoNotDependOnTheBatch) {
  // Each row alone, and each row inside batches of 2..9 rows, gives the same
  // bits: batch composition must never change a sequence's logits.
  std::mt19937 rng(5);
  const std::int64_t n = 37, k = 70;
  weight_storage w = make_weight(n, k, dtype::bf16, rng);
  const tensor_ref ref{w.bf16.data(), dtype::bf16, {n, k}, "w"};
  std::normal_distribution<float> normal;
  std::vector<float> x(9 * k);
  for (float& v : x) v = normal(rng);
  std::vector<float> alone(9 * n);
  for (std::int64_t r = 0; r < 9; ++r) cpu::matmul_nt_portable(&x[r * k], 1, ref, n, &alone[r * n], false);
  for (std::int64_t rows = 2; rows <= 9; ++rows) {
    std::vector<float> batch(rows * n);
    cpu::matmul_nt_portable(x.data(), rows, ref, n, batch.data(), false);
    for (std::int64_t i = 0; i < rows * n; ++i) ASSERT_EQ(batch[i], alone[i]) << "rows " << rows << " at " << i;
  }
}

#if defined(_OPENMP)
TEST(Matmul, ResultsDoNotDependOnTheThreadCount) {
  // Large enough to run in parallel; 1, 2 and 3 threads give the same bits.
  std::mt19937 rng(8);
  const std::int64_t rows = 37, n = 515, k = 300;
  weight_storage w = make_weight(n, k, dtype::bf16, rng);
  const tensor_ref ref{w.bf16.data(), dtype::bf16, {n, k}, "w"};
  std::normal_distribution<float> normal;
  std::vector<float> x(rows * k);
  for (float& v : x) v = normal(rng);
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    results.emplace_back(rows * n);
    cpu::matmul_nt(x.data(), rows, ref, n, results.back().data(), false);
  }
  omp_set_num_threads(saved);
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}
#endif

TEST(Matmul, RejectsMismatchedWeight) {
  const float w[6] = {};
  float y[4];
  const float x[3] = {};
  EXPECT_THROW(cpu::matmul_nt(x, 1, tensor_ref{w, dtype::f32, {2, 3}, "w"}, 4, y, false), argument_error);
  EXPECT_THROW(cpu::matmul_nt(x, 1, tensor_ref{w, dtype::i32, {2, 3}, "w"}, 2, y, false), argument_error);
}

}  // namespace
}  // namespace unmask
