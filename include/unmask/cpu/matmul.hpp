// unmask/cpu/matmul.hpp
//
// y (+)= x W^T, the one GEMM shape of a transformer: x (rows, k) fp32
// activations, W (n, k) a weight in its file dtype (f32, f16 or bf16,
// PyTorch's Linear layout), y (rows, n) fp32. The weight is packed once
// (unmask/cpu/packed_matrix.hpp) and multiplied by the micro-kernels of the
// run-time instruction set (unmask/cpu/kernels/gemm.inl): register-blocked
// tiles over packed activation strips for many rows, a bandwidth-bound
// one-row path for few. Every output is one chain of fused multiply-adds
// over k in order (or of bf16 pair dot products in the bf16 mode), whatever
// the number of rows, the path or the thread: a sequence's logits are
// bit-identical alone or in any batch. The avx2, avx512 and avx512_bf16
// levels give bit-identical results in the fp32 mode (the same fused chain);
// the portable level rounds the product and the sum separately unless the
// compiler contracts them.
#pragma once

#include <cstdint>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/core/tensor_view.hpp"
#include "unmask/cpu/isa.hpp"
#include "unmask/cpu/packed_matrix.hpp"
#include "unmask/cpu/simd/kernels.hpp"

namespace unmask::cpu {

// For each segment s of w: y[s] (rows, columns_s, row stride ldy[s]) (+)= x (rows, k, row stride ldx) W_s^T.
// `level` must have the lane count w was packed for (isa_lanes).
inline void gemm(isa_level level, const float* x, std::int64_t rows, std::int64_t ldx, const packed_matrix& w,
                 float* const* y, const std::int64_t* ldy, bool accumulate) {
  if (isa_lanes(level) != w.layout().lanes)
    throw argument_error(concat("gemm: weights packed for ", w.layout().lanes, "-lane kernels cannot run at level ",
                                isa_name(level)));
#if UNMASK_CPU_X86
  if (level == isa_level::avx512_bf16 && w.layout().pairs) {
    isa_avx512_bf16::gemm_packed<isa_avx512_bf16::ops>(x, rows, ldx, w, y, ldy, accumulate);
    return;
  }
#endif
  UNMASK_ISA_DISPATCH(level, isa::gemm_packed<isa::ops>(x, rows, ldx, w, y, ldy, accumulate));
}

// One segment, dense rows: y (rows, n) (+)= x (rows, k) W^T.
inline void gemm(isa_level level, const float* x, std::int64_t rows, const packed_matrix& w, float* y,
                 bool accumulate) {
  const std::int64_t ld = w.columns();
  gemm(level, x, rows, w.k(), w, &y, &ld, accumulate);
}

inline void check_matmul_shapes(const tensor_ref& w, std::int64_t n) {
  if (w.shape.rank != 2 || n < 1 || n > w.shape[0] || !is_compute_dtype(w.type))
    throw argument_error(concat("matmul_nt: weight '", w.name, "' of shape ", to_string(w.shape), " and dtype ",
                                dtype_name(w.type), " cannot produce ", n, " outputs"));
}

// y (rows, n) = x (rows, k) W^T, or y += x W^T when `accumulate`, from an
// unpacked weight: packs the first n rows of W for this call alone (the
// backend packs a model's weights once; this is for one-off products and
// tests). Only the first n rows of W are used, which lets a padded LM head
// produce exactly vocab_size logits.
inline void matmul_nt(const float* x, std::int64_t rows, const tensor_ref& w, std::int64_t n, float* y,
                      bool accumulate, isa_level level = default_isa(), compute_mode mode = compute_mode::f32) {
  check_matmul_shapes(w, n);
  if (rows <= 0) return;
  const packed_matrix packed({&w}, {n}, layout_for(level, mode));
  gemm(level, x, rows, packed, y, accumulate);
}

}  // namespace unmask::cpu
