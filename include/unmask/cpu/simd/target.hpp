// unmask/cpu/simd/target.hpp
//
// Function target regions: code between UNMASK_TARGET_<LEVEL>_BEGIN and
// UNMASK_TARGET_END is compiled for that instruction set whatever the
// consumer's flags (GCC's `#pragma GCC target`, Clang's
// `#pragma clang attribute ... target`), which is how one header-only build
// carries every level and picks one at run time (unmask/cpu/isa.hpp). A
// region must include no header of its own: a standard header first parsed
// inside it would compile its inline functions for that instruction set, and
// the linker could then pick those copies for code that runs on any CPU.
#pragma once

#include "unmask/cpu/isa.hpp"

#if UNMASK_CPU_X86
#define UNMASK_TARGET_AVX2 "avx2,fma,f16c"
#define UNMASK_TARGET_AVX512 "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl"
#define UNMASK_TARGET_AVX512_BF16 "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512bf16"
#if defined(__clang__)
#define UNMASK_TARGET_PRAGMA(x) _Pragma(#x)
#define UNMASK_TARGET_BEGIN(features) \
  UNMASK_TARGET_PRAGMA(clang attribute push(__attribute__((target(features))), apply_to = function))
#define UNMASK_TARGET_END _Pragma("clang attribute pop")
#else
#define UNMASK_TARGET_PRAGMA(x) _Pragma(#x)
#define UNMASK_TARGET_BEGIN(features) _Pragma("GCC push_options") UNMASK_TARGET_PRAGMA(GCC target(features))
#define UNMASK_TARGET_END _Pragma("GCC pop_options")
#endif
#endif
