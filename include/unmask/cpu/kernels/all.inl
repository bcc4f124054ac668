// unmask/cpu/kernels/all.inl: every kernel body, included once per
// instruction set by unmask/cpu/simd/kernels.hpp with `ops` defined.
#include "unmask/cpu/kernels/math.inl"
#include "unmask/cpu/kernels/gemm.inl"
#include "unmask/cpu/kernels/attention.inl"
#include "unmask/cpu/kernels/elementwise.inl"
#include "unmask/cpu/kernels/vocab.inl"
