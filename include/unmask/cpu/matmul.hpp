// unmask/cpu/matmul.hpp
//
// y (+)= x W^T, the one GEMM shape of a transformer: x (rows, k) fp32
// activations, W (n, k) a weight in its file dtype (f32, f16 or bf16, row-major
// as PyTorch's Linear stores it), y (rows, n) fp32. The portable kernel splits
// W into panels of output columns; each thread widens its panel to fp32 once
// (so a bf16 weight is read from memory once per call, not once per activation
// row), stored k-major, (k, width), and runs a register-blocked micro-kernel:
// for every k it broadcasts x[r, k] of four activation rows and multiplies-adds
// it into a 4 x width block of SIMD accumulators (width 16 with AVX, 8
// without). With fewer than four rows (a decode step) packing would cost more
// than it saves, so rows are dotted with W's rows directly, with 8-lane
// partial sums. Summation is in fp32. When the consumer defines
// UNMASK_USE_CBLAS and links a CBLAS (OpenBLAS), the same call widens panels
// of W and hands them to cblas_sgemm.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "unmask/core/dtype.hpp"
#include "unmask/core/error.hpp"
#include "unmask/core/tensor_view.hpp"
#include "unmask/cpu/parallel.hpp"

#if defined(UNMASK_USE_CBLAS)
#include <cblas.h>
#endif

namespace unmask::cpu {

// Widens rows [row_begin, row_begin + count) of a (n, k) weight to fp32.
inline void widen_rows(const tensor_ref& w, std::int64_t row_begin, std::int64_t count, float* out) {
  const std::int64_t k = w.shape[1];
  const std::size_t first = std::size_t(row_begin * k), n = std::size_t(count * k);
  switch (w.type) {
    case dtype::bf16: {
      const bfloat16* src = static_cast<const bfloat16*>(w.data) + first;
      for (std::size_t i = 0; i < n; ++i) out[i] = to_float(src[i]);
      break;
    }
    case dtype::f16: {
      const half* src = static_cast<const half*>(w.data) + first;
      for (std::size_t i = 0; i < n; ++i) out[i] = to_float(src[i]);
      break;
    }
    default: {
      const float* src = static_cast<const float*>(w.data) + first;
      std::copy(src, src + n, out);
    }
  }
}

namespace detail {

constexpr int lanes = 8;

// Dot products of one activation row with four weight rows.
inline void dot_1x4(const float* x, const float* w0, const float* w1, const float* w2, const float* w3,
                    std::int64_t k, float out[4]) {
  float a0[lanes] = {}, a1[lanes] = {}, a2[lanes] = {}, a3[lanes] = {};
  std::int64_t i = 0;
  for (; i + lanes <= k; i += lanes) {
    for (int l = 0; l < lanes; ++l) {
      const float xv = x[i + l];
      a0[l] += xv * w0[i + l];
      a1[l] += xv * w1[i + l];
      a2[l] += xv * w2[i + l];
      a3[l] += xv * w3[i + l];
    }
  }
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int l = 0; l < lanes; ++l) {
    s0 += a0[l];
    s1 += a1[l];
    s2 += a2[l];
    s3 += a3[l];
  }
  for (; i < k; ++i) {
    s0 += x[i] * w0[i];
    s1 += x[i] * w1[i];
    s2 += x[i] * w2[i];
    s3 += x[i] * w3[i];
  }
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

inline float dot_1x1(const float* x, const float* w, std::int64_t k) {
  float a[lanes] = {};
  std::int64_t i = 0;
  for (; i + lanes <= k; i += lanes)
    for (int l = 0; l < lanes; ++l) a[l] += x[i + l] * w[i + l];
  float s = 0;
  for (int l = 0; l < lanes; ++l) s += a[l];
  for (; i < k; ++i) s += x[i] * w[i];
  return s;
}

}  // namespace detail

inline void check_matmul_shapes(const tensor_ref& w, std::int64_t n) {
  if (w.shape.rank != 2 || n > w.shape[0] || !is_compute_dtype(w.type))
    throw argument_error(concat("matmul_nt: weight '", w.name, "' of shape ", to_string(w.shape), " and dtype ",
                                dtype_name(w.type), " cannot produce ", n, " outputs"));
}

namespace detail {

// The micro-kernel's SIMD vector: eight floats with AVX, four otherwise
// (GCC and Clang vector extensions lower it to the target's registers). A
// panel is two vectors wide, so four rows of accumulators fill half the
// register file and the loads of W and broadcasts of x have room.
#if defined(__AVX__)
constexpr int simd_lanes = 8;
#else
constexpr int simd_lanes = 4;
#endif
typedef float simd_float __attribute__((vector_size(simd_lanes * sizeof(float))));
constexpr std::int64_t panel_width = 2 * simd_lanes;

// Widens rows [n0, n0 + count) of W (n, k) into panel (k, panel_width),
// zero-filling the columns past count.
inline void pack_panel(const tensor_ref& w, std::int64_t n0, std::int64_t count, float* panel) {
  const std::int64_t k = w.shape[1];
  for (std::int64_t j = 0; j < panel_width; ++j) {
    if (j >= count) {
      for (std::int64_t i = 0; i < k; ++i) panel[i * panel_width + j] = 0.0f;
      continue;
    }
    const std::size_t row = std::size_t((n0 + j) * k);
    for (std::int64_t i = 0; i < k; ++i) panel[i * panel_width + j] = load_as_float(w.data, w.type, row + std::size_t(i));
  }
}

inline void load_simd(const float* p, simd_float& v) { std::memcpy(&v, p, sizeof v); }

// y[r, j] (+)= sum_i x[r, i] panel[i, j] for r < R, j < count.
template <int R>
void panel_kernel(const float* x, std::int64_t k, const float* panel, float* y, std::int64_t ldy, std::int64_t count,
                  bool accumulate) {
  simd_float acc[R][2] = {};
  for (std::int64_t i = 0; i < k; ++i) {
    simd_float w0, w1;
    load_simd(panel + i * panel_width, w0);
    load_simd(panel + i * panel_width + simd_lanes, w1);
    for (int r = 0; r < R; ++r) {
      const float xv = x[r * k + i];
      acc[r][0] += xv * w0;
      acc[r][1] += xv * w1;
    }
  }
  for (int r = 0; r < R; ++r) {
    float out[panel_width];
    std::memcpy(out, acc[r], sizeof out);
    for (std::int64_t j = 0; j < count; ++j) y[r * ldy + j] = accumulate ? y[r * ldy + j] + out[j] : out[j];
  }
}

}  // namespace detail

// The portable kernel; see the file comment.
inline void matmul_nt_portable(const float* x, std::int64_t rows, const tensor_ref& w, std::int64_t n, float* y,
                               bool accumulate) {
  check_matmul_shapes(w, n);
  const std::int64_t k = w.shape[1];
  if (rows == 0 || n == 0) return;
  if (rows < 4) {
    // Few rows: dot products straight from W's rows, four at a time.
    constexpr std::int64_t block = 16;
    parallel_for(0, (n + block - 1) / block, [&](std::int64_t p) {
      thread_local std::vector<float> wide;
      const std::int64_t n0 = p * block, count = std::min(block, n - n0);
      const float* wp = static_cast<const float*>(w.data) + n0 * k;
      if (w.type != dtype::f32) {
        if (wide.size() < std::size_t(block * k)) wide.resize(std::size_t(block * k));
        widen_rows(w, n0, count, wide.data());
        wp = wide.data();
      }
      for (std::int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * k;
        float* yr = y + r * n + n0;
        std::int64_t j = 0;
        for (; j + 4 <= count; j += 4) {
          float s[4];
          detail::dot_1x4(xr, wp + j * k, wp + (j + 1) * k, wp + (j + 2) * k, wp + (j + 3) * k, k, s);
          for (int c = 0; c < 4; ++c) yr[j + c] = accumulate ? yr[j + c] + s[c] : s[c];
        }
        for (; j < count; ++j) {
          const float s = detail::dot_1x1(xr, wp + j * k, k);
          yr[j] = accumulate ? yr[j] + s : s;
        }
      }
    });
    return;
  }
  constexpr std::int64_t width = detail::panel_width;
  parallel_for(0, (n + width - 1) / width, [&](std::int64_t p) {
    thread_local std::vector<float> panel;
    const std::int64_t n0 = p * width, count = std::min(width, n - n0);
    if (panel.size() < std::size_t(width * k)) panel.resize(std::size_t(width * k));
    detail::pack_panel(w, n0, count, panel.data());
    std::int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
      detail::panel_kernel<4>(x + r * k, k, panel.data(), y + r * n + n0, n, count, accumulate);
    switch (rows - r) {
      case 3: detail::panel_kernel<3>(x + r * k, k, panel.data(), y + r * n + n0, n, count, accumulate); break;
      case 2: detail::panel_kernel<2>(x + r * k, k, panel.data(), y + r * n + n0, n, count, accumulate); break;
      case 1: detail::panel_kernel<1>(x + r * k, k, panel.data(), y + r * n + n0, n, count, accumulate); break;
      default: break;
    }
  });
}

#if defined(UNMASK_USE_CBLAS)
// The BLAS path: 16-bit weights are widened in panels of 256 rows.
inline void matmul_nt_cblas(const float* x, std::int64_t rows, const tensor_ref& w, std::int64_t n, float* y,
                            bool accumulate) {
  check_matmul_shapes(w, n);
  const std::int64_t k = w.shape[1];
  if (rows == 0 || n == 0) return;
  constexpr std::int64_t panel = 256;
  std::vector<float> wide;
  if (w.type != dtype::f32) wide.resize(std::size_t(std::min(panel, n) * k));
  for (std::int64_t n0 = 0; n0 < n; n0 += panel) {
    const std::int64_t count = std::min(panel, n - n0);
    const float* wp = static_cast<const float*>(w.data) + n0 * k;
    if (w.type != dtype::f32) {
      parallel_for(0, count, [&](std::int64_t r) { widen_rows(w, n0 + r, 1, wide.data() + r * k); });
      wp = wide.data();
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(count), int(k), 1.0f, x, int(k), wp, int(k),
                accumulate ? 1.0f : 0.0f, y + n0, int(n));
  }
}
#endif

// y (rows, n) = x (rows, k) W^T, or y += x W^T when `accumulate`. Only the
// first n rows of W are used (n <= W.shape[0]), which lets a padded LM head
// produce exactly vocab_size logits.
inline void matmul_nt(const float* x, std::int64_t rows, const tensor_ref& w, std::int64_t n, float* y,
                      bool accumulate) {
#if defined(UNMASK_USE_CBLAS)
  matmul_nt_cblas(x, rows, w, n, y, accumulate);
#else
  matmul_nt_portable(x, rows, w, n, y, accumulate);
#endif
}

}  // namespace unmask::cpu
