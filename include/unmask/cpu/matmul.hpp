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
// without). Every output is the sequential fp32 sum over k of x[r, i] W[j, i],
// whatever the number of rows and wherever a row falls in its block of four,
// so a sequence's logits do not depend on what else is in the batch. When the consumer defines
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
// zero-filling the columns past count. `rows` is scratch of panel_width * k.
inline void pack_panel(const tensor_ref& w, std::int64_t n0, std::int64_t count, float* rows, float* panel) {
  const std::int64_t k = w.shape[1];
  widen_rows(w, n0, count, rows);  // (count, k), contiguous conversion
  std::fill(rows + count * k, rows + panel_width * k, 0.0f);
  constexpr std::int64_t tile = 64;  // transpose in L1-sized tiles
  for (std::int64_t i0 = 0; i0 < k; i0 += tile) {
    const std::int64_t i1 = std::min(k, i0 + tile);
    for (std::int64_t j = 0; j < panel_width; ++j)
      for (std::int64_t i = i0; i < i1; ++i) panel[i * panel_width + j] = rows[j * k + i];
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
  constexpr std::int64_t width = detail::panel_width;
  parallel_for(0, (n + width - 1) / width, [&](std::int64_t p) {
    thread_local std::vector<float> panel, scratch;
    const std::int64_t n0 = p * width, count = std::min(width, n - n0);
    if (panel.size() < std::size_t(width * k)) {
      panel.resize(std::size_t(width * k));
      scratch.resize(std::size_t(width * k));
    }
    detail::pack_panel(w, n0, count, scratch.data(), panel.data());
    std::int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
      detail::panel_kernel<4>(x + r * k, k, panel.data(), y + r * n + n0, n, count, accumulate);
    switch (rows - r) {
      case 3: detail::panel_kernel<3>(x + r * k, k, panel.data(), y + r * n + n0, n, count, accumulate); break;
      case 2: detail::panel_kernel<2>(x + r * k, k, panel.data(), y + r * n + n0, n, count, accumulate); break;
      case 1: detail::panel_kernel<1>(x + r * k, k, panel.data(), y + r * n + n0, n, count, accumulate); break;
      default: break;
    }
  }, (rows + 1) * width * k);
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
