// unmask/cpu/kernels/elementwise.inl  (compiled once per instruction set: unmask/cpu/simd/kernels.hpp)
//
// The memory-bound kernels between the GEMMs, vectorised, each parallel over
// rows or chunks:
//   rmsnorm    out = x * (1 / sqrt(mean(x^2) + eps)) * w    (LLaDA's RMSLayerNorm,
//              transformers' LlamaRMSNorm); the sum of squares in four
//              interleaved vector accumulators, then a fixed tree
//   swiglu     out = silu(gate) * up, silu(g) = g / (1 + e^-g)   (Shazeer 2020)
//   rope       half-rotation rotary embedding (unmask/model/rotary.hpp) from
//              a table of cos and sin per position, shared by all heads
//   widen      a row of a f32, f16 or bf16 tensor as fp32 (the embedding gather)
//   add_bias   y[r, j] += bias[j] (the q/k/v biases of the Qwen2 layout)

// n values of a weight in its dtype, from element `at`, as floats.
template <class Ops>
UNMASK_SIMD_INLINE typename Ops::vf weight_load(const tensor_ref& w, std::int64_t at) {
  switch (w.type) {
    case dtype::bf16: return Ops::widen_bf16(static_cast<const std::uint16_t*>(w.data) + at);
    case dtype::f16: return Ops::widen_f16(static_cast<const std::uint16_t*>(w.data) + at);
    default: return Ops::load(static_cast<const float*>(w.data) + at);
  }
}
template <class Ops>
UNMASK_SIMD_INLINE typename Ops::vf weight_load_n(const tensor_ref& w, std::int64_t at, int n) {
  float t[Ops::lanes] = {};
  for (int i = 0; i < n; ++i) t[i] = load_as_float(w.data, w.type, std::size_t(at + i));
  return Ops::load(t);
}

template <class Ops>
void rmsnorm_rows(const float* x, std::int64_t rows, std::int64_t dim, const tensor_ref& w, float eps, float* out) {
  using vf = typename Ops::vf;
  constexpr int L = Ops::lanes;
  parallel_for(0, rows, [&](std::int64_t r) {
    const float* xr = x + r * dim;
    float* yr = out + r * dim;
    vf acc[4] = {Ops::zero(), Ops::zero(), Ops::zero(), Ops::zero()};
    std::int64_t i = 0;
    for (; i + 4 * L <= dim; i += 4 * L)
      for (int a = 0; a < 4; ++a) {
        const vf v = Ops::load(xr + i + a * L);
        acc[a] = Ops::fma(v, v, acc[a]);
      }
    for (; i + L <= dim; i += L) {
      const vf v = Ops::load(xr + i);
      acc[0] = Ops::fma(v, v, acc[0]);
    }
    if (i < dim) {
      const vf v = Ops::load_n(xr + i, int(dim - i));
      acc[1] = Ops::fma(v, v, acc[1]);
    }
    const float sum = Ops::hsum((acc[0] + acc[1]) + (acc[2] + acc[3]));
    const vf scale = Ops::set1(1.0f / std::sqrt(sum / float(dim) + eps));
    for (i = 0; i + L <= dim; i += L) Ops::store(yr + i, (Ops::load(xr + i) * scale) * weight_load<Ops>(w, i));
    if (i < dim) {
      const int n = int(dim - i);
      Ops::store_n(yr + i, (Ops::load_n(xr + i, n) * scale) * weight_load_n<Ops>(w, i, n), n);
    }
  }, 4 * dim);
}

template <class Ops>
UNMASK_SIMD_INLINE typename Ops::vf vsilu(typename Ops::vf g) {
  return g / (Ops::set1(1.0f) + vexp<Ops>(Ops::zero() - g));
}

template <class Ops>
void swiglu_values(const float* gate, const float* up, std::int64_t n, float* out) {
  constexpr int L = Ops::lanes;
  constexpr std::int64_t chunk = 4096;
  parallel_for(0, (n + chunk - 1) / chunk, [&](std::int64_t c) {
    const std::int64_t end = std::min(n, (c + 1) * chunk);
    std::int64_t i = c * chunk;
    for (; i + L <= end; i += L) Ops::store(out + i, vsilu<Ops>(Ops::load(gate + i)) * Ops::load(up + i));
    if (i < end) {
      const int m = int(end - i);
      Ops::store_n(out + i, vsilu<Ops>(Ops::load_n(gate + i, m)) * Ops::load_n(up + i, m), m);
    }
  }, 16 * chunk);
}

// x (rows, heads, head_dim) in place; table[(p * 2 + 0) * half + i] = cos,
// table[(p * 2 + 1) * half + i] = sin of pair i at position p.
template <class Ops>
void rope_rows(float* x, std::int64_t rows, std::int64_t heads, std::int64_t head_dim, const std::int32_t* positions,
               const float* table) {
  constexpr int L = Ops::lanes;
  const std::int64_t half = head_dim / 2;
  parallel_for(0, rows, [&](std::int64_t r) {
    const float* cos_p = table + std::int64_t(positions[r]) * 2 * half;
    const float* sin_p = cos_p + half;
    for (std::int64_t h = 0; h < heads; ++h) {
      float* x1 = x + (r * heads + h) * head_dim;
      float* x2 = x1 + half;
      for (std::int64_t i = 0; i < half; i += L) {
        const int n = int(std::min<std::int64_t>(L, half - i));
        const auto a = Ops::load_n(x1 + i, n), b = Ops::load_n(x2 + i, n);
        const auto c = Ops::load_n(cos_p + i, n), s = Ops::load_n(sin_p + i, n);
        Ops::store_n(x1 + i, a * c - b * s, n);
        Ops::store_n(x2 + i, b * c + a * s, n);
      }
    }
  }, 4 * heads * head_dim);
}

template <class Ops>
void add_bias_rows(float* y, std::int64_t rows, std::int64_t n, const tensor_ref& bias) {
  constexpr int L = Ops::lanes;
  parallel_for(0, rows, [&](std::int64_t r) {
    float* yr = y + r * n;
    std::int64_t j = 0;
    for (; j + L <= n; j += L) Ops::store(yr + j, Ops::load(yr + j) + weight_load<Ops>(bias, j));
    if (j < n) Ops::store_n(yr + j, Ops::load_n(yr + j, int(n - j)) + weight_load_n<Ops>(bias, j, int(n - j)), int(n - j));
  }, 2 * n);
}

// out[0, count) = row `row` of w (rows, dim) as floats.
template <class Ops>
UNMASK_SIMD_INLINE void widen_row(const tensor_ref& w, std::int64_t row, float* out) {
  constexpr int L = Ops::lanes;
  const std::int64_t dim = w.shape[1], first = row * dim;
  std::int64_t i = 0;
  for (; i + L <= dim; i += L) Ops::store(out + i, weight_load<Ops>(w, first + i));
  if (i < dim) Ops::store_n(out + i, weight_load_n<Ops>(w, first + i, int(dim - i)), int(dim - i));
}

template <class Ops>
void embedding_rows(const std::int32_t* tokens, std::int64_t rows, const tensor_ref& wte, float* out) {
  const std::int64_t dim = wte.shape[1];
  parallel_for(0, rows, [&](std::int64_t r) { widen_row<Ops>(wte, tokens[r], out + r * dim); }, 2 * dim);
}
