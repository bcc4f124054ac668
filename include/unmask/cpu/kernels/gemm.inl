// unmask/cpu/kernels/gemm.inl  (compiled once per instruction set: unmask/cpu/simd/kernels.hpp)
//
// y (rows, n) (+)= x (rows, k) W^T over a packed_matrix W, in the loop
// structure of the BLIS/GotoBLAS family (Van Zee and van de Geijn, "BLIS: A
// Framework for Rapidly Instantiating BLAS Functionality", 2015): a register
// tile of R rows x 2L columns accumulates in 2R vector registers while the
// micro-kernel walks k, one panel row (2L weights, widened in registers) and
// R broadcast activations per step. Activations are first copied into strips
// of MR rows stored k-major ("packed activation strips"), so the R
// broadcasts of a step read one cache line; k is cut into blocks of KC so a
// strip block and a weight slab stay in L1 and L2 while every strip passes
// over the slab. Threads take chunks of panels.
//
// Few rows (a decode step) are bandwidth-bound instead: the one-row path
// skips the strips and keeps several panels in flight per row, so enough
// independent multiply-add chains hide the FMA latency while the weights
// stream from memory at full speed.
//
// Summation order, the same in both paths and whatever the number of rows,
// the tile a row falls in or the thread that computes it, so a row's result
// is bit-identical alone or in any batch: k is cut into blocks of KC from
// k = 0; each block's partial sum is one chain of fused multiply-adds from
// zero, and the partial sums are added to y in block order,
//   y = (((y0 + s_0) + s_1) + ...)   (y0 = y with accumulate; else y = s_0 + ...)
// A tile adds its partial sum to C only at its end, so C's cache lines are
// prefetched while it computes rather than waited for at its start. In the
// bf16 mode each step is one bf16-pair dot product (dot_bf16) instead of one
// multiply-add.

template <class Ops>
struct gemm_constants {
  static constexpr int L = Ops::lanes;
  static constexpr int MR = L == 16 ? 12 : 6;          // rows of a strip: 2 MR accumulators
  static constexpr int small_rows = L == 16 ? 4 : 3;  // up to this, the one-row path
  static constexpr std::int64_t KC = 256;             // k (or k pairs) per block
  // Tile heights of the strip path. Rows are spread evenly over the strips
  // (32 rows at MR 6: 6, 6, 5, 5, 5, 5), so strips are MR, MR - 1 or MR - 2
  // high when there are enough rows; other heights run as tiles of 8, 4, 2
  // and 1 (fewer kernels to compile than every height up to MR).
  static constexpr int tile_for(int rows) {
    return rows >= MR ? MR : rows >= MR - 1 ? MR - 1 : rows >= MR - 2 ? MR - 2 : rows >= 8 ? 8 : rows >= 4 ? 4 : rows >= 2 ? 2 : 1;
  }
  // Panels in flight per row on the one-row path.
  static constexpr int panels_for(int rows) { return L == 16 ? (rows <= 2 ? 4 : 2) : (rows == 1 ? 4 : 2); }
};

// One panel row (2L weights at depth i) as two float vectors.
template <class Ops>
struct panel_f32 {
  const float* p;
  std::int64_t ld;  // floats between panel rows
  UNMASK_SIMD_INLINE void load(std::int64_t i, typename Ops::vf& lo, typename Ops::vf& hi) const {
    lo = Ops::load(p + i * ld);
    hi = Ops::load(p + i * ld + Ops::lanes);
  }
};
template <class Ops>
struct panel_f16 {
  const std::uint16_t* p;
  UNMASK_SIMD_INLINE void load(std::int64_t i, typename Ops::vf& lo, typename Ops::vf& hi) const {
    lo = Ops::widen_f16(p + i * 2 * Ops::lanes);
    hi = Ops::widen_f16(p + i * 2 * Ops::lanes + Ops::lanes);
  }
};
template <class Ops>
struct panel_bf16 {
  const std::uint16_t* p;
  UNMASK_SIMD_INLINE void load(std::int64_t i, typename Ops::vf& lo, typename Ops::vf& hi) const {
    Ops::widen_bf16_pairs(p + i * 2 * Ops::lanes, lo, hi);
  }
};

// Where a tile's outputs go: panel p's columns start at c[p] (row stride
// ldc); cols[p] of its 2L columns are stored (0: a padding panel).
template <int P>
struct tile_out {
  float* c[P];
  int cols[P];
  std::int64_t ldc;
};

// Starts fetching the tile's C lines (needed at its end).
template <class Ops, int R, int P>
UNMASK_SIMD_INLINE void tile_prefetch(const tile_out<P>& out) {
  constexpr int L = Ops::lanes;
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < P; ++p)
      if (out.cols[p] > 0) {
        __builtin_prefetch(out.c[p] + r * out.ldc, 1, 3);
        __builtin_prefetch(out.c[p] + r * out.ldc + 2 * L - 1, 1, 3);
      }
}

// C = s (first) or C + s, for the stored columns.
template <class Ops, int R, int P>
UNMASK_SIMD_INLINE void tile_store(typename Ops::vf (&acc)[R][P][2], const tile_out<P>& out, bool first) {
  constexpr int L = Ops::lanes;
  UNMASK_CPU_UNROLL
  for (int r = 0; r < R; ++r)
    UNMASK_CPU_UNROLL
    for (int p = 0; p < P; ++p) {
      float* c = out.c[p] + r * out.ldc;
      if (out.cols[p] == 2 * L) {
        Ops::store(c, first ? acc[r][p][0] : Ops::load(c) + acc[r][p][0]);
        Ops::store(c + L, first ? acc[r][p][1] : Ops::load(c + L) + acc[r][p][1]);
      } else if (out.cols[p] > 0) {
        const int n0 = out.cols[p] < L ? out.cols[p] : L, n1 = out.cols[p] - n0;
        Ops::store_n(c, first ? acc[r][p][0] : Ops::load_n(c, n0) + acc[r][p][0], n0);
        if (n1 > 0) Ops::store_n(c + L, first ? acc[r][p][1] : Ops::load_n(c + L, n1) + acc[r][p][1], n1);
      }
    }
}

// C tile (R x P panels) = (first ? 0 : C) + A (R x [k0, k1)) B, with
// A[r][i] = a[r * a_row + i * a_k].
template <class Ops, int R, int P, class Panel>
UNMASK_SIMD_NOINLINE void tile_f32(const float* a, std::int64_t a_row, std::int64_t a_k, const Panel (&b)[P], std::int64_t k0,
                     std::int64_t k1, const tile_out<P>& out, bool first) {
  using vf = typename Ops::vf;
  vf acc[R][P][2];
  UNMASK_CPU_UNROLL
  for (int r = 0; r < R; ++r)
    UNMASK_CPU_UNROLL
    for (int p = 0; p < P; ++p) acc[r][p][0] = acc[r][p][1] = Ops::zero();
  tile_prefetch<Ops, R, P>(out);
  for (std::int64_t i = k0; i < k1; ++i) {
    vf w[P][2];
UNMASK_CPU_UNROLL
    for (int p = 0; p < P; ++p) b[p].load(i, w[p][0], w[p][1]);
UNMASK_CPU_UNROLL
    for (int r = 0; r < R; ++r) {
      const vf x = Ops::set1(a[r * a_row + i * a_k]);
UNMASK_CPU_UNROLL
      for (int p = 0; p < P; ++p) {
        acc[r][p][0] = Ops::fma(x, w[p][0], acc[r][p][0]);
        acc[r][p][1] = Ops::fma(x, w[p][1], acc[r][p][1]);
      }
    }
  }
  tile_store<Ops, R, P>(acc, out, first);
}

// The bf16 mode: A holds (even, odd) bf16 pairs as 32-bit words, B panel
// pointers at pair 0 (2L words per pair row: columns [0, L) then [L, 2L)).
template <class Ops, int R, int P>
UNMASK_SIMD_NOINLINE void tile_pairs(const std::uint32_t* a, std::int64_t a_row, std::int64_t a_k, const std::uint16_t* const (&b)[P],
                       std::int64_t t0, std::int64_t t1, const tile_out<P>& out, bool first) {
  using vf = typename Ops::vf;
  using vu = typename Ops::vu;
  constexpr int L = Ops::lanes;
  vf acc[R][P][2];
  UNMASK_CPU_UNROLL
  for (int r = 0; r < R; ++r)
    UNMASK_CPU_UNROLL
    for (int p = 0; p < P; ++p) acc[r][p][0] = acc[r][p][1] = Ops::zero();
  tile_prefetch<Ops, R, P>(out);
  for (std::int64_t t = t0; t < t1; ++t) {
    vu w[P][2];
UNMASK_CPU_UNROLL
    for (int p = 0; p < P; ++p) {
      w[p][0] = Ops::loadu(b[p] + t * 4 * L);
      w[p][1] = Ops::loadu(b[p] + t * 4 * L + 2 * L);
    }
UNMASK_CPU_UNROLL
    for (int r = 0; r < R; ++r) {
      const std::uint32_t x = a[r * a_row + t * a_k];
UNMASK_CPU_UNROLL
      for (int p = 0; p < P; ++p) {
        acc[r][p][0] = Ops::dot_bf16(acc[r][p][0], w[p][0], x);
        acc[r][p][1] = Ops::dot_bf16(acc[r][p][1], w[p][1], x);
      }
    }
  }
  tile_store<Ops, R, P>(acc, out, first);
}

// Runtime row count -> compile-time R (1..MAX).
template <int MAX, class F>
UNMASK_SIMD_INLINE void with_rows(int rows, F&& f) {
  if constexpr (MAX >= 1) {
    if (rows == MAX) {
      f(std::integral_constant<int, MAX>{});
      return;
    }
    with_rows<MAX - 1>(rows, f);
  }
}

// Runtime tile height (one of K::tile_for's) -> compile-time R.
template <class K, class F>
UNMASK_SIMD_INLINE void with_tile_rows(int rows, F&& f) {
  if (rows == K::MR) f(std::integral_constant<int, K::MR>{});
  else if (rows == K::MR - 1) f(std::integral_constant<int, K::MR - 1>{});
  else if (rows == K::MR - 2) f(std::integral_constant<int, K::MR - 2>{});
  else if (rows == 8) f(std::integral_constant<int, (K::MR > 10 ? 8 : 4)>{});  // 8 exists only with MR 12
  else if (rows == 4) f(std::integral_constant<int, 4>{});
  else if (rows == 2) f(std::integral_constant<int, 2>{});
  else f(std::integral_constant<int, 1>{});
}

// Strip s of `count` strips over `rows` rows: its first row and height
// (rows spread evenly, the first rows % count strips one row higher).
inline void strip_extent(std::int64_t rows, std::int64_t count, std::int64_t s, std::int64_t& first, std::int64_t& height) {
  const std::int64_t base = rows / count, extra = rows % count;
  first = s * base + std::min(s, extra);
  height = base + (s < extra ? 1 : 0);
}

// Rounds activations to bf16 pairs: out[t] = (x[2t], x[2t + 1]), x[k] = 0.
UNMASK_SIMD_INLINE std::uint32_t bf16_pair(const float* x, std::int64_t t, std::int64_t k) {
  const std::uint32_t even = to_bfloat16(x[2 * t]).bits;
  const std::uint32_t odd = 2 * t + 1 < k ? to_bfloat16(x[2 * t + 1]).bits : 0u;
  return even | (odd << 16);
}

// The panels of one segment that a work unit covers.
struct panel_range {
  std::size_t segment;
  std::int64_t first, count;  // panels within the segment
};

inline std::vector<panel_range> panel_units(const packed_matrix& w, std::int64_t per_unit) {
  std::vector<panel_range> units;
  for (std::size_t s = 0; s < w.segments().size(); ++s)
    for (std::int64_t p = 0; p < w.segments()[s].panels; p += per_unit)
      units.push_back({s, p, std::min(per_unit, w.segments()[s].panels - p)});
  return units;
}

// y[s] (rows, columns_s) with row stride ldy[s], for each segment s.
template <class Ops>
void gemm_packed(const float* x, std::int64_t rows, std::int64_t ldx, const packed_matrix& w, float* const* y,
                 const std::int64_t* ldy, bool accumulate) {
  using K = gemm_constants<Ops>;
  constexpr int L = K::L;
  constexpr std::int64_t W = 2 * L;
  if (w.layout().lanes != L)
    throw argument_error(concat("gemm: weights packed for ", w.layout().lanes, " lanes, the kernel has ", L));
  if (rows <= 0) return;
  const bool pairs = w.layout().pairs;
  const std::int64_t k = w.k(), depth = pairs ? w.k_stored() / 2 : k;  // steps of the micro-kernel
  const dtype type = w.type();
  thread_local std::vector<float> strips;  // the calling thread's; workers only read it
  auto column_start = [&](const panel_range& u, std::int64_t p) { return (u.first + p) * W; };
  auto panel_ptr = [&](const panel_range& u, std::int64_t p) {
    return w.panel(w.segments()[u.segment].first_panel + u.first + p);
  };
  auto panel_cols = [&](const panel_range& u, std::int64_t p) {
    return int(std::min<std::int64_t>(W, w.segments()[u.segment].columns - column_start(u, p)));
  };

  if (rows <= K::small_rows) {
    // The one-row path: A read in place (fp32) or as bf16 pairs, full depth.
    const std::uint32_t* xp = nullptr;
    if (pairs) {
      strips.resize(std::size_t(rows * depth));
      auto* out = reinterpret_cast<std::uint32_t*>(strips.data());
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t t = 0; t < depth; ++t) out[r * depth + t] = bf16_pair(x + r * ldx, t, k);
      xp = out;
    }
    with_rows<K::small_rows>(int(rows), [&](auto rc) {
      constexpr int R = decltype(rc)::value;
      constexpr int P = K::panels_for(R);
      const std::vector<panel_range> units = panel_units(w, P);
      parallel_for(0, std::int64_t(units.size()), [&](std::int64_t index) {
        const panel_range& u = units[std::size_t(index)];
        tile_out<P> out;
        out.ldc = ldy[u.segment];
        const void* src[P];
        for (int p = 0; p < P; ++p) {
          const std::int64_t q = p < u.count ? p : u.count - 1;  // padding panels repeat the last one
          src[p] = panel_ptr(u, q);
          out.c[p] = y[u.segment] + column_start(u, q);
          out.cols[p] = p < u.count ? panel_cols(u, q) : 0;
        }
        for (std::int64_t k0 = 0; k0 < depth; k0 += K::KC) {
          const std::int64_t k1 = std::min(depth, k0 + K::KC);
          const bool first = k0 == 0 && !accumulate;
          if (Ops::pairs_only || pairs) {
            const std::uint16_t* b[P];
            for (int p = 0; p < P; ++p) b[p] = static_cast<const std::uint16_t*>(src[p]);
            tile_pairs<Ops, R, P>(xp, depth, 1, b, k0, k1, out, first);
          } else if constexpr (Ops::pairs_only) {
          } else if (type == dtype::f32) {
            panel_f32<Ops> b[P];
            for (int p = 0; p < P; ++p) b[p] = {static_cast<const float*>(src[p]), W};
            tile_f32<Ops, R, P>(x, ldx, 1, b, k0, k1, out, first);
          } else if (type == dtype::f16) {
            panel_f16<Ops> b[P];
            for (int p = 0; p < P; ++p) b[p] = {static_cast<const std::uint16_t*>(src[p])};
            tile_f32<Ops, R, P>(x, ldx, 1, b, k0, k1, out, first);
          } else {
            panel_bf16<Ops> b[P];
            for (int p = 0; p < P; ++p) b[p] = {static_cast<const std::uint16_t*>(src[p])};
            tile_f32<Ops, R, P>(x, ldx, 1, b, k0, k1, out, first);
          }
        }
      }, std::int64_t(R) * P * W * k);
    });
    return;
  }

  // Pack A into strips of up to MR rows, k-major: strip s, step i, row r at
  // (s * depth + i) * MR + r; rows past the strip's height are zero (never stored).
  constexpr int MR = K::MR;
  const std::int64_t strip_count = (rows + MR - 1) / MR;
  strips.resize(std::size_t(strip_count * depth * MR));
  float* xs = strips.data();
  parallel_for(0, strip_count, [&](std::int64_t s) {
    float* dst = xs + s * depth * MR;
    auto* dst_pairs = reinterpret_cast<std::uint32_t*>(dst);
    std::int64_t first_row = 0, height = 0;
    strip_extent(rows, strip_count, s, first_row, height);
    for (int r = 0; r < MR; ++r) {
      const std::int64_t row = first_row + r;
      if (r >= height) {
        for (std::int64_t i = 0; i < depth; ++i) dst[i * MR + r] = 0.0f;
      } else if (pairs) {
        for (std::int64_t t = 0; t < depth; ++t) dst_pairs[t * MR + r] = bf16_pair(x + row * ldx, t, k);
      } else {
        for (std::int64_t i = 0; i < depth; ++i) dst[i * MR + r] = x[row * ldx + i];
      }
    }
  }, MR * depth);

  // Bytes of one step of a panel: 2L weights, or 2L bf16 pairs.
  const std::int64_t row_bytes = pairs ? 4 * W : W * std::int64_t(dtype_size(type));
  const std::int64_t panels = w.panels();
  const std::int64_t per_unit = std::max<std::int64_t>(1, panels / (8 * std::int64_t(thread_count())));
  const std::vector<panel_range> units = panel_units(w, per_unit);
  parallel_for(0, std::int64_t(units.size()), [&](std::int64_t index) {
    const panel_range& u = units[std::size_t(index)];
    for (std::int64_t k0 = 0; k0 < depth; k0 += K::KC) {
      const std::int64_t k1 = std::min(depth, k0 + K::KC);
      const bool first = k0 == 0 && !accumulate;
      for (std::int64_t p = 0; p < u.count; ++p) {
        const void* src = panel_ptr(u, p);
        // While this slab (panel p, rows [k0, k1)) passes the strips, the
        // next one is fetched into the cache a share per strip, so a new
        // slab never starts with a wait on memory.
        const unsigned char* next = nullptr;
        if (p + 1 < u.count) next = static_cast<const unsigned char*>(panel_ptr(u, p + 1)) + k0 * row_bytes;
        else if (k1 < depth) next = static_cast<const unsigned char*>(panel_ptr(u, 0)) + k1 * row_bytes;
        const std::int64_t lines = (std::min(K::KC, next && p + 1 < u.count ? k1 - k0 : depth - k1) * row_bytes + 63) / 64;
        const std::int64_t lines_per_strip = (lines + strip_count - 1) / strip_count;
        for (std::int64_t s = 0; s < strip_count; ++s) {
          if (next)
            for (std::int64_t line = s * lines_per_strip; line < std::min(lines, (s + 1) * lines_per_strip); ++line)
              __builtin_prefetch(next + line * 64, 0, 2);
          // A strip runs as tiles of the heights K::tile_for gives.
          std::int64_t first_row = 0, strip_rows = 0;
          strip_extent(rows, strip_count, s, first_row, strip_rows);
          for (std::int64_t r0 = 0; r0 < strip_rows;) {
            const int R = K::tile_for(int(strip_rows - r0));
            tile_out<1> out;
            out.ldc = ldy[u.segment];
            out.c[0] = y[u.segment] + (first_row + r0) * out.ldc + column_start(u, p);
            out.cols[0] = panel_cols(u, p);
            const float* a = xs + s * depth * MR + r0;
            with_tile_rows<K>(R, [&](auto rc) {
              constexpr int RR = decltype(rc)::value;
              if constexpr (Ops::pairs_only) {
                const std::uint16_t* b[1] = {static_cast<const std::uint16_t*>(src)};
                tile_pairs<Ops, RR, 1>(reinterpret_cast<const std::uint32_t*>(a), 1, MR, b, k0, k1, out, first);
              } else if (pairs) {
                const std::uint16_t* b[1] = {static_cast<const std::uint16_t*>(src)};
                tile_pairs<Ops, RR, 1>(reinterpret_cast<const std::uint32_t*>(a), 1, MR, b, k0, k1, out, first);
              } else if (type == dtype::f32) {
                const panel_f32<Ops> b[1] = {{static_cast<const float*>(src), W}};
                tile_f32<Ops, RR, 1>(a, 1, MR, b, k0, k1, out, first);
              } else if (type == dtype::f16) {
                const panel_f16<Ops> b[1] = {{static_cast<const std::uint16_t*>(src)}};
                tile_f32<Ops, RR, 1>(a, 1, MR, b, k0, k1, out, first);
              } else {
                const panel_bf16<Ops> b[1] = {{static_cast<const std::uint16_t*>(src)}};
                tile_f32<Ops, RR, 1>(a, 1, MR, b, k0, k1, out, first);
              }
            });
            r0 += R;
          }
        }
      }
    }
  }, per_unit * W * depth * rows);
}
