// unmask/cpu/simd/kernels.hpp
//
// Compiles every CPU kernel body (unmask/cpu/kernels/*.inl) once per
// instruction set, each copy in its own namespace and, on x86, inside its
// own target region (unmask/cpu/simd/target.hpp):
//   isa_portable     generic_ops<8>, the consumer's own flags
//   isa_avx2         avx2_ops
//   isa_avx512       avx512_ops
//   isa_avx512_bf16  avx512_bf16_ops: only the bf16 mode's GEMM (vdpbf16ps);
//                    everything else at that level is isa_avx512's
// The public headers (unmask/cpu/matmul.hpp, attention.hpp, ...) pick the
// copy for the run-time level. Kernels are templates over their `Ops`, so a
// copy also runs with other vocabularies: the tests instantiate the portable
// copy with generic_ops<16> to check the 16-lane (AVX-512) layout and index
// logic on machines without AVX-512. Everything a body needs is included
// here, before the first region opens.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "unmask/core/dtype.hpp"
#include "unmask/core/error.hpp"
#include "unmask/cpu/packed_matrix.hpp"
#include "unmask/cpu/parallel.hpp"
#include "unmask/cpu/simd/target.hpp"
#include "unmask/cpu/simd/vector_types.hpp"
#include "unmask/model/attention_mask.hpp"
#include "unmask/policy/vocab_stats.hpp"

#if UNMASK_CPU_X86
#include <immintrin.h>
#endif

// GCC notes that vectors wider than the baseline ISA are passed differently
// than in GCC 4.5; these never cross a level boundary (all forced inline),
// and the note comes at template instantiation, so it stays off.
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpsabi"
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

// Compiling the kernels once. Every copy of every kernel is compiled in each
// translation unit that calls it, which is what a header-only library costs
// (about half the build time of a unit that runs the engine). A program can
// compile them once instead: define UNMASK_CPU_SEPARATE_KERNELS in all its
// translation units (they then only declare the instances of
// unmask/cpu/kernels/instances.inl, `extern template`) and, in exactly one
// of them, also UNMASK_CPU_KERNELS_IMPLEMENTATION before including this
// header, which then defines them all. This project builds its own tests,
// examples, benchmarks and program that way (cmake/unmask_cpu_kernels.cpp);
// without either macro nothing changes.
#if defined(UNMASK_CPU_KERNELS_IMPLEMENTATION)
#define UNMASK_CPU_KERNEL_INSTANCE template
#elif defined(UNMASK_CPU_SEPARATE_KERNELS)
#define UNMASK_CPU_KERNEL_INSTANCE extern template
#endif

namespace unmask::cpu::isa_portable {
#include "unmask/cpu/simd/generic_ops.inl"
using ops = generic_ops<8>;
#include "unmask/cpu/kernels/all.inl"
#include "unmask/cpu/kernels/instances.inl"
}  // namespace unmask::cpu::isa_portable

#if UNMASK_CPU_X86
UNMASK_TARGET_BEGIN(UNMASK_TARGET_AVX2)
namespace unmask::cpu::isa_avx2 {
#include "unmask/cpu/simd/generic_ops.inl"
#include "unmask/cpu/simd/avx2_ops.inl"
using ops = avx2_ops;
#include "unmask/cpu/kernels/all.inl"
#include "unmask/cpu/kernels/instances.inl"
}  // namespace unmask::cpu::isa_avx2
UNMASK_TARGET_END

UNMASK_TARGET_BEGIN(UNMASK_TARGET_AVX512)
namespace unmask::cpu::isa_avx512 {
#include "unmask/cpu/simd/generic_ops.inl"
#include "unmask/cpu/simd/avx512_ops.inl"
using ops = avx512_ops;
#include "unmask/cpu/kernels/all.inl"
#include "unmask/cpu/kernels/instances.inl"
}  // namespace unmask::cpu::isa_avx512
UNMASK_TARGET_END

UNMASK_TARGET_BEGIN(UNMASK_TARGET_AVX512_BF16)
#define UNMASK_SIMD_WITH_BF16 1
namespace unmask::cpu::isa_avx512_bf16 {
#include "unmask/cpu/simd/generic_ops.inl"
#include "unmask/cpu/simd/avx512_ops.inl"
using ops = avx512_bf16_ops;
#include "unmask/cpu/kernels/gemm.inl"
#include "unmask/cpu/kernels/instances.inl"
}  // namespace unmask::cpu::isa_avx512_bf16
#undef UNMASK_SIMD_WITH_BF16
UNMASK_TARGET_END
#endif

#if defined(__clang__)
#pragma clang diagnostic pop
#endif

// Runs `call` with `isa` naming the namespace of the copy for `level`, e.g.
//   UNMASK_ISA_DISPATCH(level, isa::rmsnorm<isa::ops>(...));
// (avx512_bf16 runs isa_avx512's copy; unmask/cpu/matmul.hpp sends the bf16
// mode's GEMMs to isa_avx512_bf16 itself).
#define UNMASK_ISA_DISPATCH(level, call)                                            \
  do {                                                                              \
    switch (level) {                                                                \
      UNMASK_ISA_DISPATCH_X86(call)                                                 \
      default: { namespace isa = ::unmask::cpu::isa_portable; call; } break;       \
    }                                                                               \
  } while (0)
#if UNMASK_CPU_X86
#define UNMASK_ISA_DISPATCH_X86(call)                                                              \
  case ::unmask::cpu::isa_level::avx2: { namespace isa = ::unmask::cpu::isa_avx2; call; } break;     \
  case ::unmask::cpu::isa_level::avx512:                                                            \
  case ::unmask::cpu::isa_level::avx512_bf16: { namespace isa = ::unmask::cpu::isa_avx512; call; } break;
#else
#define UNMASK_ISA_DISPATCH_X86(call)
#endif
