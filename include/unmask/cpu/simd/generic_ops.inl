// unmask/cpu/simd/generic_ops.inl  (compiled once per instruction set; see kernels.hpp)
//
// The SIMD vocabulary every CPU kernel is written in, for N floats a vector,
// as GCC/Clang vector extensions: arithmetic, loads and stores (whole and
// partial), selects, horizontal reductions, and the conversions the weight
// panels need (bf16 pairs split into two float vectors, f16 and bf16
// widened, bf16 dot products of pairs). Compiled outside any target region
// this is the portable level; the AVX2 and AVX-512 levels derive from it and
// replace what an intrinsic does better (avx2_ops.inl, avx512_ops.inl).
// Because kernels use nothing else, instantiating them with generic_ops<16>
// runs the 16-lane layout and index logic of the AVX-512 kernels on any
// machine, which the tests do. It is re-included in each level's region
// because a function may only inline functions compiled for a subset of its
// own instruction set (and vectors wider than that set cannot be passed).

template <int N>
struct generic_ops {
  static constexpr int lanes = N;
  static constexpr bool pairs_only = false;  // this copy runs only the bf16 mode's GEMM
  using vf = typename simd::vector_types<N>::vf;
  using vi = typename simd::vector_types<N>::vi;
  using vu = typename simd::vector_types<N>::vu;
  using vh = typename simd::vector_types<N>::vh;

  static UNMASK_SIMD_INLINE vf zero() { return vf{}; }
  // A broadcast: x - 0 folds to x for every x (0 + x would not: -0 + 0 is +0).
  static UNMASK_SIMD_INLINE vf set1(float x) { return x - vf{}; }
  static UNMASK_SIMD_INLINE vu set1u(std::uint32_t x) { return vu{} + x; }
  static UNMASK_SIMD_INLINE vi set1i(std::int32_t x) { return vi{} + x; }
  static UNMASK_SIMD_INLINE vf load(const float* p) {
    vf v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static UNMASK_SIMD_INLINE void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
  // The first n (0 <= n <= N) lanes; the others read as zero.
  static UNMASK_SIMD_INLINE vf load_n(const float* p, int n) {
    vf v{};
    std::memcpy(&v, p, std::size_t(n) * 4);
    return v;
  }
  static UNMASK_SIMD_INLINE void store_n(float* p, vf v, int n) {
    const vf copy = v;  // only the copy's address is taken
    std::memcpy(p, &copy, std::size_t(n) * 4);
  }
  static UNMASK_SIMD_INLINE vu loadu(const void* p) {
    vu v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static UNMASK_SIMD_INLINE vi loadi(const std::int32_t* p) {
    vi v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }

  static UNMASK_SIMD_INLINE vf fma(vf a, vf b, vf c) { return a * b + c; }
  // Lanes whose mask is all ones take a, zero lanes take b.
  static UNMASK_SIMD_INLINE vf select(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
  static UNMASK_SIMD_INLINE vf max(vf a, vf b) { return select(a > b, a, b); }
  static UNMASK_SIMD_INLINE vf min(vf a, vf b) { return select(a < b, a, b); }
  // Round to the nearest integer, as floats (|x| < 2^22).
  static UNMASK_SIMD_INLINE vf round(vf x) {
    const vf magic = set1(12582912.0f);  // 1.5 * 2^23
    return (x + magic) - magic;
  }
  static UNMASK_SIMD_INLINE vi to_int(vf x) { return __builtin_convertvector(x, vi); }  // truncates

  static UNMASK_SIMD_INLINE float lane(vf v, int i) {
    float t[N];
    std::memcpy(t, &v, sizeof t);
    return t[i];
  }
  // Pairwise halving: the same tree at every call, so a reduction is reproducible.
  static UNMASK_SIMD_INLINE float hsum(vf v) {
    float t[N];
    std::memcpy(t, &v, sizeof t);
    for (int w = N / 2; w > 0; w /= 2)
      for (int i = 0; i < w; ++i) t[i] += t[i + w];
    return t[0];
  }
  static UNMASK_SIMD_INLINE float hmax(vf v) {
    float t[N];
    std::memcpy(t, &v, sizeof t);
    for (int w = N / 2; w > 0; w /= 2)
      for (int i = 0; i < w; ++i) t[i] = t[i] > t[i + w] ? t[i] : t[i + w];
    return t[0];
  }

  // The sums of four vectors: out[i] = hsum of the i-th (a reduction tree
  // fixed per level, the same for each of the four).
  static UNMASK_SIMD_INLINE void reduce4(vf a, vf b, vf c, vf d, float* out) {
    out[0] = hsum(a);
    out[1] = hsum(b);
    out[2] = hsum(c);
    out[3] = hsum(d);
  }

  // A bf16 panel row: 2N bf16 whose even entries are columns [0, N) and odd
  // entries columns [N, 2N), split into two float vectors (a shift and a mask).
  static UNMASK_SIMD_INLINE void widen_bf16_pairs(const std::uint16_t* p, vf& lo, vf& hi) {
    const vu w = loadu(p);
    lo = (vf)(w << 16);
    hi = (vf)(w & set1u(0xffff0000u));
  }
  // N contiguous bf16 or f16 values.
  static UNMASK_SIMD_INLINE vf widen_bf16(const std::uint16_t* p) {
    vh h;
    std::memcpy(&h, p, sizeof h);
    return (vf)(__builtin_convertvector(h, vu) << 16);
  }
  static UNMASK_SIMD_INLINE vf widen_f16(const std::uint16_t* p) {
    float t[N];
    for (int i = 0; i < N; ++i) t[i] = to_float(half{p[i]});
    return load(t);
  }

  // acc + pairs.odd * x.odd + pairs.even * x.even per lane, each addition
  // rounded: `pairs` holds N (even, odd) bf16 pairs (even in the low half),
  // `x` one such pair. VDPBF16PS's sequence (Intel SDM), which avx512_bf16
  // runs as one instruction; a product of two bf16 is exact in fp32, so
  // fused and unfused multiply-adds agree here.
  static UNMASK_SIMD_INLINE vf dot_bf16(vf acc, vu pairs, std::uint32_t x) {
    const vf x_even = (vf)set1u(x << 16), x_odd = (vf)set1u(x & 0xffff0000u);
    acc = fma((vf)(pairs & set1u(0xffff0000u)), x_odd, acc);
    return fma((vf)(pairs << 16), x_even, acc);
  }
};
