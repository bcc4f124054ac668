// The packed GEMM at every instruction-set level against a double-precision
// reference: every weight dtype, both compute modes, odd sizes that exercise
// every remainder path (one-row path, strips, short tiles, partial panels,
// k not a multiple of the block), accumulation, fused segments, and the
// invariances decoding relies on: a row's result is the same bits alone or in
// any batch, on any number of threads, and (fp32 mode) on every level that
// fuses its multiply-adds.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/kernel_levels.hpp"
#include "unmask/cpu/matmul.hpp"
#include "unmask/cpu/parallel.hpp"

namespace unmask {
namespace {

struct weight_storage {
  std::vector<float> f32;
  std::vector<bfloat16> bf16;
  std::vector<half> f16;
  std::vector<float> values;  // what the stored weight means, as float
  tensor_ref ref;
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
  const void* data = t == dtype::bf16 ? static_cast<const void*>(w.bf16.data())
                     : t == dtype::f16 ? static_cast<const void*>(w.f16.data())
                                       : static_cast<const void*>(w.f32.data());
  w.ref = tensor_ref{data, t, {n, k}, "w"};
  return w;
}

std::vector<float> random_vector(std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// y (rows, n) (+)= x W^T for the first n rows of a (n_weight, k) weight.
void check_gemm(const test::kernel_level& level, cpu::compute_mode mode, dtype t, std::int64_t rows,
                std::int64_t n_weight, std::int64_t n, std::int64_t k, bool accumulate) {
  std::mt19937 rng(unsigned(rows * 131 + n * 7 + k));
  const weight_storage w = make_weight(n_weight, k, t, rng);
  const std::vector<float> x = random_vector(std::size_t(rows * k), rng), y0 = random_vector(std::size_t(rows * n), rng);
  std::vector<float> y = y0;
  const cpu::packed_matrix packed({&w.ref}, {n}, test::layout_of(level, mode));
  float* out = y.data();
  level.gemm(x.data(), rows, k, packed, &out, &n, accumulate);
  const bool bf16 = mode == cpu::compute_mode::bf16;
  double worst = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < n; ++j) {
      double expected = accumulate ? y0[std::size_t(r * n + j)] : 0.0;
      double scale = std::fabs(expected);
      for (std::int64_t i = 0; i < k; ++i) {
        const float xv = x[std::size_t(r * k + i)], wv = w.values[std::size_t(j * k + i)];
        // The bf16 mode multiplies activations and weights rounded to bf16.
        const double p = bf16 ? double(to_float(to_bfloat16(xv))) * to_float(to_bfloat16(wv)) : double(xv) * wv;
        expected += p;
        scale += std::fabs(p);
      }
      worst = std::max(worst, std::fabs(y[std::size_t(r * n + j)] - expected) / (scale + 1e-30));
    }
  }
  // fp32 accumulation of k products: error bounded by ~k * 2^-24 relative to sum |p|.
  EXPECT_LT(worst, 1e-6 * double(std::max<std::int64_t>(k, 8)) / 8)
      << level.name << " " << cpu::compute_mode_name(mode) << " " << dtype_name(t) << " rows " << rows << " n " << n
      << " k " << k << (accumulate ? " accumulate" : "");
}

TEST(Matmul, EveryLevelMatchesDoubleReference) {
  for (const test::kernel_level& level : test::kernel_levels())
    for (cpu::compute_mode mode : {cpu::compute_mode::f32, cpu::compute_mode::bf16})
      for (dtype t : {dtype::f32, dtype::bf16, dtype::f16})
        for (auto [rows, n, k] : {std::tuple{1, 1, 1}, {2, 5, 7}, {3, 33, 65}, {4, 70, 300}, {5, 100, 257},
                                  {13, 31, 9}, {17, 33, 65}, {27, 64, 520}, {64, 48, 128}}) {
          check_gemm(level, mode, t, rows, n, n, k, false);
          check_gemm(level, mode, t, rows, n, n, k, true);
        }
}

TEST(Matmul, UsesOnlyTheFirstNRowsOfTheWeight) {
  for (const test::kernel_level& level : test::kernel_levels()) {
    check_gemm(level, cpu::compute_mode::f32, dtype::bf16, 4, 40, 33, 24, false);
    check_gemm(level, cpu::compute_mode::f32, dtype::bf16, 30, 40, 33, 24, false);
  }
}

TEST(Matmul, UnpackedEntryPointPacksAndMultiplies) {
  std::mt19937 rng(2);
  const weight_storage w = make_weight(9, 20, dtype::bf16, rng);
  const std::vector<float> x = random_vector(3 * 20, rng);
  std::vector<float> direct(3 * 9), packed_out(3 * 9);
  cpu::matmul_nt(x.data(), 3, w.ref, 9, direct.data(), false);
  const cpu::isa_level level = cpu::default_isa();
  const cpu::packed_matrix packed({&w.ref}, {9}, cpu::layout_for(level, cpu::compute_mode::f32));
  cpu::gemm(level, x.data(), 3, packed, packed_out.data(), false);
  EXPECT_EQ(direct, packed_out);
}

// Each row alone (the one-row path), and inside batches that take every path
// (one-row, few-row, strips with short last tiles), gives the same bits.
TEST(Matmul, RowResultsDoNotDependOnTheBatch) {
  std::mt19937 rng(5);
  const std::int64_t n = 37, k = 300, most = 31;
  for (dtype t : {dtype::bf16, dtype::f32, dtype::f16}) {
    const weight_storage w = make_weight(n, k, t, rng);
    const std::vector<float> x = random_vector(std::size_t(most * k), rng);
    for (const test::kernel_level& level : test::kernel_levels())
      for (cpu::compute_mode mode : {cpu::compute_mode::f32, cpu::compute_mode::bf16}) {
        const cpu::packed_matrix packed({&w.ref}, {n}, test::layout_of(level, mode));
        std::vector<float> alone(std::size_t(most * n));
        for (std::int64_t r = 0; r < most; ++r) {
          float* out = &alone[std::size_t(r * n)];
          level.gemm(&x[std::size_t(r * k)], 1, k, packed, &out, &n, false);
        }
        for (std::int64_t rows = 2; rows <= most; ++rows) {
          std::vector<float> batch(std::size_t(rows * n));
          float* out = batch.data();
          level.gemm(x.data(), rows, k, packed, &out, &n, false);
          for (std::int64_t i = 0; i < rows * n; ++i)
            ASSERT_EQ(batch[std::size_t(i)], alone[std::size_t(i)])
                << level.name << " " << cpu::compute_mode_name(mode) << " " << dtype_name(t) << " rows " << rows
                << " at " << i;
        }
      }
  }
}

TEST(Matmul, ResultsDoNotDependOnTheThreadCount) {
  std::mt19937 rng(8);
  const std::int64_t n = 515, k = 300;
  const weight_storage w = make_weight(n, k, dtype::bf16, rng);
  const int saved = cpu::thread_count();
  for (const test::kernel_level& level : test::kernel_levels())
    for (std::int64_t rows : {1, 37}) {
      const std::vector<float> x = random_vector(std::size_t(rows * k), rng);
      const cpu::packed_matrix packed({&w.ref}, {n}, test::layout_of(level, cpu::compute_mode::f32));
      std::vector<std::vector<float>> results;
      for (int threads : {1, 2, 3}) {
        cpu::set_thread_count(threads);
        results.emplace_back(std::size_t(rows * n));
        float* out = results.back().data();
        level.gemm(x.data(), rows, k, packed, &out, &n, false);
      }
      EXPECT_EQ(results[0], results[1]) << level.name;
      EXPECT_EQ(results[0], results[2]) << level.name;
    }
  cpu::set_thread_count(saved);
}

// fp32: every level with fused multiply-adds computes the same chain, so
// they agree bit for bit; so do 8- and 16-lane portable copies. bf16 mode:
// the products are exact, so every level agrees (vdpbf16ps flushes
// subnormals, which these values do not produce).
TEST(Matmul, LevelsAgreeBitForBit) {
  std::mt19937 rng(11);
  const std::int64_t rows = 23, n = 70, k = 333;
  const weight_storage w = make_weight(n, k, dtype::bf16, rng);
  const std::vector<float> x = random_vector(std::size_t(rows * k), rng);
  const std::vector<test::kernel_level> levels = test::kernel_levels();
  for (cpu::compute_mode mode : {cpu::compute_mode::f32, cpu::compute_mode::bf16}) {
    std::vector<std::vector<float>> out;
    for (const test::kernel_level& level : levels) {
      const cpu::packed_matrix packed({&w.ref}, {n}, test::layout_of(level, mode));
      out.emplace_back(std::size_t(rows * n));
      float* y = out.back().data();
      level.gemm(x.data(), rows, k, packed, &y, &n, false);
    }
    for (std::size_t a = 0; a < levels.size(); ++a)
      for (std::size_t b = a + 1; b < levels.size(); ++b) {
        const bool comparable = mode == cpu::compute_mode::bf16 || levels[a].fused == levels[b].fused;
        if (!comparable) continue;
        if (mode == cpu::compute_mode::bf16 && (levels[a].name == "avx512_bf16" || levels[b].name == "avx512_bf16")) {
          // Native vdpbf16ps against the emulation: equal in the SDM's
          // arithmetic; allow rounding in case a CPU orders it otherwise.
          for (std::size_t i = 0; i < out[a].size(); ++i)
            ASSERT_NEAR(out[a][i], out[b][i], 1e-5f * (1 + std::fabs(out[a][i]))) << levels[a].name << " " << levels[b].name;
          std::size_t same = 0;
          for (std::size_t i = 0; i < out[a].size(); ++i) same += out[a][i] == out[b][i];
          std::printf("bf16 mode, %s vs %s: %zu of %zu outputs bit-identical\n", levels[a].name.c_str(),
                      levels[b].name.c_str(), same, out[a].size());
          continue;
        }
        EXPECT_EQ(out[a], out[b]) << cpu::compute_mode_name(mode) << ": " << levels[a].name << " vs " << levels[b].name;
      }
  }
}

// Q/K/V-style segments packed together give exactly the separate products.
TEST(Matmul, FusedSegmentsEqualSeparateProducts) {
  std::mt19937 rng(13);
  const std::int64_t k = 96;
  const std::vector<std::int64_t> widths = {40, 17, 17};
  std::vector<weight_storage> parts;
  for (std::int64_t n : widths) parts.push_back(make_weight(n, k, dtype::bf16, rng));
  for (const test::kernel_level& level : test::kernel_levels())
    for (std::int64_t rows : {1, 2, 9, 40}) {
      const std::vector<float> x = random_vector(std::size_t(rows * k), rng);
      const cpu::packed_matrix fused({&parts[0].ref, &parts[1].ref, &parts[2].ref}, widths,
                                     test::layout_of(level, cpu::compute_mode::f32));
      std::vector<std::vector<float>> together, apart;
      std::vector<float*> outs;
      for (std::int64_t n : widths) together.emplace_back(std::size_t(rows * n));
      for (auto& v : together) outs.push_back(v.data());
      level.gemm(x.data(), rows, k, fused, outs.data(), widths.data(), false);
      for (std::size_t i = 0; i < widths.size(); ++i) {
        const cpu::packed_matrix one({&parts[i].ref}, {widths[i]}, test::layout_of(level, cpu::compute_mode::f32));
        apart.emplace_back(std::size_t(rows * widths[i]));
        float* y = apart.back().data();
        level.gemm(x.data(), rows, k, one, &y, &widths[i], false);
        EXPECT_EQ(together[i], apart[i]) << level.name << " segment " << i << " rows " << rows;
      }
    }
}

TEST(Matmul, RejectsMismatchedWeights) {
  const float w[6] = {};
  float y[4];
  const float x[3] = {};
  EXPECT_THROW(cpu::matmul_nt(x, 1, tensor_ref{w, dtype::f32, {2, 3}, "w"}, 4, y, false), argument_error);
  EXPECT_THROW(cpu::matmul_nt(x, 1, tensor_ref{w, dtype::i32, {2, 3}, "w"}, 2, y, false), argument_error);
  const tensor_ref a{w, dtype::f32, {2, 3}, "a"}, b{w, dtype::f32, {3, 2}, "b"};
  EXPECT_THROW(cpu::packed_matrix({&a, &b}, {2, 3}, {8, false}), argument_error);  // different k
  EXPECT_THROW(cpu::packed_matrix({&a}, {2}, {4, false}), argument_error);          // no such layout
  const cpu::packed_matrix wide({&a}, {2}, {16, false});
  EXPECT_THROW(cpu::gemm(cpu::isa_level::portable, x, 1, wide, y, false), argument_error);  // 16-lane panels, 8-lane kernel
}

}  // namespace
}  // namespace unmask
