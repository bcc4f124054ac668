// unmask/cpu/isa.hpp
//
// Which SIMD instruction set the CPU kernels use, chosen at run time. Every
// kernel is compiled for four levels inside the one header-only library
// (function target regions, unmask/cpu/simd/), so a consumer's default
// `-O2` build gets the fastest path the machine has:
//   portable     GCC/Clang vector extensions, whatever the compiler targets
//   avx2         AVX2 + FMA + F16C, 8 floats a register
//   avx512       AVX-512 F/BW/DQ/VL, 16 floats a register
//   avx512_bf16  avx512 plus AVX512-BF16 dot products (vdpbf16ps) for the
//                bf16 compute mode; fp32 kernels are those of avx512
// The level is detected from CPUID and XCR0 (the OS must save the vector
// state, not only the CPU support the instructions). A lower level can be
// forced with the environment variable UNMASK_CPU_ISA (portable, avx2,
// avx512, avx512_bf16; read once) or per backend (cpu_backend_options::isa);
// a level the machine lacks is never used: the request is capped at what was
// detected.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "unmask/core/error.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define UNMASK_CPU_X86 1
#include <cpuid.h>
#else
#define UNMASK_CPU_X86 0
#endif

namespace unmask::cpu {

enum class isa_level : int { portable = 0, avx2 = 1, avx512 = 2, avx512_bf16 = 3 };

inline const char* isa_name(isa_level l) {
  switch (l) {
    case isa_level::portable: return "portable";
    case isa_level::avx2: return "avx2";
    case isa_level::avx512: return "avx512";
    case isa_level::avx512_bf16: return "avx512_bf16";
  }
  return "?";
}

// Parses a level name; throws argument_error naming the accepted names.
inline isa_level parse_isa_level(const std::string& name, const char* what = "instruction set") {
  for (isa_level l : {isa_level::portable, isa_level::avx2, isa_level::avx512, isa_level::avx512_bf16})
    if (name == isa_name(l)) return l;
  throw argument_error(concat(what, " '", name, "' is none of portable, avx2, avx512, avx512_bf16"));
}

// Floats per SIMD register of a level's kernels; the packed weight layout
// depends only on it (portable and avx2 share theirs).
inline int isa_lanes(isa_level l) { return l >= isa_level::avx512 ? 16 : 8; }

struct cpu_features {
  bool avx2 = false;         // AVX2, FMA and F16C, with the OS saving ymm state
  bool avx512 = false;       // AVX-512 F, BW, DQ and VL, with the OS saving zmm and mask state
  bool avx512_bf16 = false;  // AVX512-BF16
};

inline cpu_features detect_cpu_features() {
  cpu_features f;
#if UNMASK_CPU_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  unsigned xcr0_lo = 0;  // the states tested live in the low word; edx (the high one) is clobbered
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo) : "c"(0) : "edx");
  const bool ymm_state = (xcr0_lo & 0x6u) == 0x6u;     // SSE and AVX state
  const bool zmm_state = (xcr0_lo & 0xe6u) == 0xe6u;   // plus opmask, ZMM_Hi256, Hi16_ZMM
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5);
  const bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
  const unsigned max_subleaf = a;
  bool bf16 = false;
  if (max_subleaf >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    bf16 = a & (1u << 5);
  }
  f.avx2 = ymm_state && avx2 && fma && f16c;
  f.avx512 = f.avx2 && zmm_state && avx512f && avx512dq && avx512bw && avx512vl;
  f.avx512_bf16 = f.avx512 && bf16;
#endif
  return f;
}

// The best level this CPU supports.
inline isa_level detected_isa() {
  static const isa_level level = [] {
    const cpu_features f = detect_cpu_features();
    return f.avx512_bf16 ? isa_level::avx512_bf16
           : f.avx512    ? isa_level::avx512
           : f.avx2      ? isa_level::avx2
                         : isa_level::portable;
  }();
  return level;
}

// What a request for `wanted` gets on this machine.
inline isa_level capped_isa(isa_level wanted) { return wanted < detected_isa() ? wanted : detected_isa(); }

// The level used when nothing else is asked for: the detected one, capped by
// UNMASK_CPU_ISA when it is set (an unknown name throws argument_error).
inline isa_level default_isa() {
  const char* forced = std::getenv("UNMASK_CPU_ISA");
  if (!forced || !*forced) return detected_isa();
  return capped_isa(parse_isa_level(forced, "UNMASK_CPU_ISA"));
}

}  // namespace unmask::cpu
