// unmask/cpu/simd/avx512_ops.inl  (inside the AVX-512 regions of kernels.hpp)
//
// The AVX-512 levels' vocabulary: generic_ops<16> with fused multiply-add,
// hardware min/max and rounding, masked partial loads and stores, and F16C
// and zero-extending conversions (avx512_ops); in the avx512_bf16 region
// also vdpbf16ps for bf16 dot products (avx512_bf16_ops). Each runs only
// where detect_cpu_features() found it. (The masked forms with an explicit
// source stand in for max, min, roundscale and extract: GCC 12's unmasked
// ones pass an undefined vector that -Wuninitialized reports.)

struct avx512_ops : generic_ops<16> {
  static UNMASK_SIMD_INLINE vf set1(float x) { return (vf)_mm512_set1_ps(x); }
  static UNMASK_SIMD_INLINE vf fma(vf a, vf b, vf c) { return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }
  static UNMASK_SIMD_INLINE vf max(vf a, vf b) { return (vf)_mm512_mask_max_ps((__m512)a, __mmask16(0xffff), (__m512)a, (__m512)b); }
  static UNMASK_SIMD_INLINE vf min(vf a, vf b) { return (vf)_mm512_mask_min_ps((__m512)a, __mmask16(0xffff), (__m512)a, (__m512)b); }
  static UNMASK_SIMD_INLINE vf round(vf x) {
    return (vf)_mm512_mask_roundscale_ps((__m512)x, __mmask16(0xffff), (__m512)x,
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static UNMASK_SIMD_INLINE vf load_n(const float* p, int n) {
    return (vf)_mm512_maskz_loadu_ps(__mmask16((1u << n) - 1u), p);
  }
  static UNMASK_SIMD_INLINE void store_n(float* p, vf v, int n) {
    _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1u), (__m512)v);
  }
  // Halves folded (v_i + v_{i+8}), then the AVX2 tree, for each of four vectors.
  static UNMASK_SIMD_INLINE void reduce4(vf a, vf b, vf c, vf d, float* out) {
    auto fold = [](vf v) {
      const __m256 zero = _mm256_setzero_ps();
      return _mm256_add_ps(_mm512_mask_extractf32x8_ps(zero, __mmask8(0xff), (__m512)v, 0),
                           _mm512_mask_extractf32x8_ps(zero, __mmask8(0xff), (__m512)v, 1));
    };
    const __m256 ab = _mm256_hadd_ps(fold(a), fold(b)), cd = _mm256_hadd_ps(fold(c), fold(d));
    const __m256 abcd = _mm256_hadd_ps(ab, cd);
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
  }
  static UNMASK_SIMD_INLINE vf widen_f16(const std::uint16_t* p) {
    return (vf)_mm512_mask_cvtph_ps(_mm512_setzero_ps(), __mmask16(0xffff),
                                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
};

#if defined(UNMASK_SIMD_WITH_BF16)
struct avx512_bf16_ops : avx512_ops {
  static constexpr bool pairs_only = true;
  // vdpbf16ps: acc + pairs.odd * x.odd + pairs.even * x.even, rounded after
  // each addition, subnormal inputs and outputs flushed to zero.
  static UNMASK_SIMD_INLINE vf dot_bf16(vf acc, vu pairs, std::uint32_t x) {
    return (vf)_mm512_dpbf16_ps((__m512)acc, (__m512bh)pairs, (__m512bh)_mm512_set1_epi32(int(x)));
  }
};
#endif
