// unmask/core/dtype.hpp
//
// Element types. `dtype` lists every type a safetensors file may declare (so
// the reader can validate any file), while the model computes with three of
// them: f32, f16 and bf16. The 16-bit types are stored as raw bit patterns in
// `half` and `bfloat16`, and converted to and from float with exact IEEE 754
// round-to-nearest-even, subnormals, infinities and NaN included. The
// conversions are UNMASK_HOST_DEVICE so a CUDA kernel decodes weights with the
// very same code as the CPU backend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "unmask/core/config.hpp"

namespace unmask {

enum class dtype : std::uint8_t {
  boolean, u8, i8, i16, u16, f16, bf16, i32, u32, f32, f64, i64, u64, f8_e4m3, f8_e5m2
};

// Bytes per element.
UNMASK_HOST_DEVICE std::size_t dtype_size(dtype t) {
  switch (t) {
    case dtype::boolean: case dtype::u8: case dtype::i8:
    case dtype::f8_e4m3: case dtype::f8_e5m2: return 1;
    case dtype::i16: case dtype::u16: case dtype::f16: case dtype::bf16: return 2;
    case dtype::i32: case dtype::u32: case dtype::f32: return 4;
    case dtype::f64: case dtype::i64: case dtype::u64: return 8;
  }
  return 0;
}

// The dtype string used by safetensors headers ("BF16", "F32", ...).
inline const char* dtype_name(dtype t) {
  switch (t) {
    case dtype::boolean: return "BOOL";
    case dtype::u8: return "U8";
    case dtype::i8: return "I8";
    case dtype::i16: return "I16";
    case dtype::u16: return "U16";
    case dtype::f16: return "F16";
    case dtype::bf16: return "BF16";
    case dtype::i32: return "I32";
    case dtype::u32: return "U32";
    case dtype::f32: return "F32";
    case dtype::f64: return "F64";
    case dtype::i64: return "I64";
    case dtype::u64: return "U64";
    case dtype::f8_e4m3: return "F8_E4M3";
    case dtype::f8_e5m2: return "F8_E5M2";
  }
  return "?";
}

// Parses a safetensors dtype string; false when the string names no dtype.
inline bool parse_dtype(std::string_view name, dtype& out) {
  static constexpr dtype all[] = {dtype::boolean, dtype::u8,   dtype::i8,      dtype::i16,
                                  dtype::u16,     dtype::f16,  dtype::bf16,    dtype::i32,
                                  dtype::u32,     dtype::f32,  dtype::f64,     dtype::i64,
                                  dtype::u64,     dtype::f8_e4m3, dtype::f8_e5m2};
  for (dtype t : all) {
    if (name == dtype_name(t)) {
      out = t;
      return true;
    }
  }
  return false;
}

// True for the dtypes that weights and activations may have.
UNMASK_HOST_DEVICE bool is_compute_dtype(dtype t) {
  return t == dtype::f32 || t == dtype::f16 || t == dtype::bf16;
}

UNMASK_HOST_DEVICE std::uint32_t float_bits(float f) {
#if UNMASK_ON_DEVICE
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

UNMASK_HOST_DEVICE float bits_float(std::uint32_t u) {
#if UNMASK_ON_DEVICE
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// bfloat16: the top 16 bits of an IEEE binary32.
struct bfloat16 {
  std::uint16_t bits;
};

UNMASK_HOST_DEVICE float to_float(bfloat16 x) { return bits_float(std::uint32_t(x.bits) << 16); }

// Round to nearest, ties to even; NaN stays a (quiet) NaN of the same sign.
UNMASK_HOST_DEVICE bfloat16 to_bfloat16(float f) {
  const std::uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bfloat16{std::uint16_t((u >> 16) | 0x0040u)};
  const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return bfloat16{std::uint16_t((u + rounding) >> 16)};
}

// IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
struct half {
  std::uint16_t bits;
};

UNMASK_HOST_DEVICE float to_float(half x) {
  const std::uint32_t sign = std::uint32_t(x.bits & 0x8000u) << 16;
  const std::uint32_t exponent = (x.bits >> 10) & 0x1fu;
  std::uint32_t mantissa = x.bits & 0x3ffu;
  if (exponent == 0x1f) return bits_float(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  if (mantissa == 0) return bits_float(sign);  // signed zero
  // Subnormal: value = mantissa * 2^-24, exactly representable in binary32.
  const float magnitude = float(mantissa) * 5.9604644775390625e-8f;
  return sign ? -magnitude : magnitude;
}

// Round to nearest, ties to even, with gradual underflow and overflow to inf.
UNMASK_HOST_DEVICE half to_half(float f) {
  const std::uint32_t u = float_bits(f);
  const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000u);
  const std::uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return half{std::uint16_t(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu))};
  if (magnitude >= 0x477ff000u) return half{std::uint16_t(sign | 0x7c00u)};  // rounds to >= 65520: inf
  const std::uint32_t exponent = magnitude >> 23;
  if (exponent >= 113) {
    // Normal half: drop 13 mantissa bits with round-to-nearest-even; a carry
    // out of the mantissa correctly bumps the exponent.
    const std::uint32_t rebased = magnitude - (112u << 23);
    const std::uint32_t rounding = 0xfffu + ((rebased >> 13) & 1u);
    return half{std::uint16_t(sign | ((rebased + rounding) >> 13))};
  }
  if (exponent < 102) return half{sign};  // below half the smallest subnormal: zero
  // Subnormal half: shift the full significand (with its implicit one) right.
  const std::uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
  const std::uint32_t shift = 126u - exponent;  // 14..24
  const std::uint32_t kept = significand >> shift;
  const std::uint32_t remainder = significand & ((1u << shift) - 1u);
  const std::uint32_t halfway = 1u << (shift - 1u);
  const std::uint32_t rounded = kept + ((remainder > halfway || (remainder == halfway && (kept & 1u))) ? 1u : 0u);
  return half{std::uint16_t(sign | rounded)};
}

UNMASK_HOST_DEVICE float to_float(float x) { return x; }

// Reads element i of a buffer of the given compute dtype as float.
UNMASK_HOST_DEVICE float load_as_float(const void* data, dtype t, std::size_t i) {
  switch (t) {
    case dtype::bf16: return to_float(static_cast<const bfloat16*>(data)[i]);
    case dtype::f16: return to_float(static_cast<const half*>(data)[i]);
    default: return static_cast<const float*>(data)[i];
  }
}

// The dtype tag of a C++ element type.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr dtype value = dtype::f32; };
template <> struct dtype_of<half> { static constexpr dtype value = dtype::f16; };
template <> struct dtype_of<bfloat16> { static constexpr dtype value = dtype::bf16; };
template <> struct dtype_of<std::int32_t> { static constexpr dtype value = dtype::i32; };
template <> struct dtype_of<std::int64_t> { static constexpr dtype value = dtype::i64; };
template <> struct dtype_of<std::uint8_t> { static constexpr dtype value = dtype::u8; };

}  // namespace unmask
