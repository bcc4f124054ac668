// unmask/cpu/simd/avx2_ops.inl  (inside the AVX2 region of kernels.hpp)
//
// The AVX2 level's vocabulary: generic_ops<8> with fused multiply-add,
// hardware min/max and rounding, masked partial loads and stores, and F16C
// conversions.
// Runs only where detect_cpu_features() found AVX2, FMA and F16C.

struct avx2_ops : generic_ops<8> {
  static UNMASK_SIMD_INLINE vf set1(float x) { return (vf)_mm256_set1_ps(x); }
  static UNMASK_SIMD_INLINE vf fma(vf a, vf b, vf c) { return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c); }
  static UNMASK_SIMD_INLINE vf max(vf a, vf b) { return (vf)_mm256_max_ps((__m256)a, (__m256)b); }
  static UNMASK_SIMD_INLINE vf min(vf a, vf b) { return (vf)_mm256_min_ps((__m256)a, (__m256)b); }
  // Lanes [0, n) through a lane mask (no call to memcpy for a short copy).
  static UNMASK_SIMD_INLINE __m256i first_lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static UNMASK_SIMD_INLINE vf load_n(const float* p, int n) { return (vf)_mm256_maskload_ps(p, first_lanes(n)); }
  static UNMASK_SIMD_INLINE void store_n(float* p, vf v, int n) { _mm256_maskstore_ps(p, first_lanes(n), (__m256)v); }
  static UNMASK_SIMD_INLINE vf round(vf x) {
    return (vf)_mm256_round_ps((__m256)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7)) for each of four vectors.
  static UNMASK_SIMD_INLINE void reduce4(vf a, vf b, vf c, vf d, float* out) {
    const __m256 ab = _mm256_hadd_ps((__m256)a, (__m256)b), cd = _mm256_hadd_ps((__m256)c, (__m256)d);
    const __m256 abcd = _mm256_hadd_ps(ab, cd);
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
  }
  static UNMASK_SIMD_INLINE vf widen_f16(const std::uint16_t* p) {
    return (vf)_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};
