// unmask/cpu/kernels/attention.inl  (compiled once per instruction set: unmask/cpu/simd/kernels.hpp)
//
// Fused scaled dot-product attention, softmax(q k^T / sqrt(d)) v, in the
// FlashAttention manner (Dao et al. 2022; Milakov and Gimelshein 2018, "Online
// normalizer calculation for softmax"): keys are visited in tiles of TK, each
// query keeps a running maximum m, a running sum l and an unnormalised output
// o, and a new tile rescales them by exp(m_old - m_new), so the scores never
// exist beyond one tile. Work is split into tasks of up to TL query rows that
// share a K/V head ((query, head) pairs of a GQA group); tasks run in
// parallel.
//
// Scores are dot products over head_dim with SIMD vectors along head_dim:
// a register tile of RL queries x RK keys accumulates one vector per pair
// over head_dim / L chunks (K and Q are read in place, nothing is
// transposed), and reduce4 sums four such vectors at once. The output update
// o += p v broadcasts p and streams V rows. One key (autoregressive decoding)
// is as cheap per score as a full canvas.
//
// A query's result depends only on its own scores: every score is the same
// chain over head_dim and the same reduction tree, tiles of keys start at
// key 0, and a key that a query may not see (mask, length) enters its
// softmax as an exact 0 (an exp of -inf, a rescale by exp(0) = 1). So the
// same query gives the same bits alone, in any batch or tile, and against a
// cached key range or the whole canvas, which the exactness of block-causal
// caching rests on.

template <class Ops>
struct attention_constants {
  static constexpr int L = Ops::lanes;
  static constexpr int TL = 24;              // query rows per task
  static constexpr std::int64_t TK = 64;     // keys per tile
  static constexpr int RL = L == 16 ? 6 : 3;  // score and output tiles: RL queries (x RK keys, x CG chunks)
  static constexpr int RK = 4;
  static constexpr int CG = 4;               // output tile: head_dim chunks per pass
};

// Head-dim chunk c of a row as a vector (a short last chunk reads zeros).
template <class Ops, bool Whole>
UNMASK_SIMD_INLINE typename Ops::vf chunk_load(const float* row, std::int64_t c, std::int64_t hd) {
  const std::int64_t at = c * Ops::lanes;
  if (Whole) return Ops::load(row + at);
  return at + Ops::lanes <= hd ? Ops::load(row + at) : Ops::load_n(row + at, int(hd - at));
}

// scores[l][j] = scale * q_l . k_j for RL x RK pairs (rows past the valid
// ones repeat the last; the caller ignores them).
template <class Ops, int QR, int KR, bool Whole>
UNMASK_SIMD_NOINLINE void score_tile(const float* const (&q)[QR], const float* const (&k)[KR], std::int64_t hd, float scale,
                                     float* const (&out)[QR]) {
  using vf = typename Ops::vf;
  static_assert(KR % 4 == 0, "keys are reduced four at a time");
  vf acc[QR][KR];
  UNMASK_CPU_UNROLL
  for (int r = 0; r < QR; ++r)
    UNMASK_CPU_UNROLL
    for (int j = 0; j < KR; ++j) acc[r][j] = Ops::zero();
  const std::int64_t chunks = (hd + Ops::lanes - 1) / Ops::lanes;
  for (std::int64_t c = 0; c < chunks; ++c) {
    vf kv[KR];
    UNMASK_CPU_UNROLL
    for (int j = 0; j < KR; ++j) kv[j] = chunk_load<Ops, Whole>(k[j], c, hd);
    UNMASK_CPU_UNROLL
    for (int r = 0; r < QR; ++r) {
      const vf qv = chunk_load<Ops, Whole>(q[r], c, hd);
      UNMASK_CPU_UNROLL
      for (int j = 0; j < KR; ++j) acc[r][j] = Ops::fma(qv, kv[j], acc[r][j]);
    }
  }
  UNMASK_CPU_UNROLL
  for (int r = 0; r < QR; ++r)
    UNMASK_CPU_UNROLL
    for (int j = 0; j < KR; j += 4) {
      float sums[4];
      Ops::reduce4(acc[r][j], acc[r][j + 1], acc[r][j + 2], acc[r][j + 3], sums);
      for (int t = 0; t < 4; ++t) out[r][j + t] = sums[t] * scale;
    }
}

// o[r] (head_dim) += sum_j p[r][j] v_j over nk keys, for QR rows and the
// head-dim chunks [c0, c0 + CG) (chunks past the row repeat the last one).
// Whole: every chunk is L wide (head_dim a multiple of L), plain loads.
template <class Ops, int QR, int CG, bool Whole>
UNMASK_SIMD_NOINLINE void output_tile(const float* const (&p)[QR], const float* v, std::int64_t ldv, std::int64_t nk,
                                      std::int64_t c0, std::int64_t hd, float* const (&o)[QR]) {
  using vf = typename Ops::vf;
  constexpr int L = Ops::lanes;
  const std::int64_t chunks = (hd + L - 1) / L;
  std::int64_t chunk[CG];
  int width[CG];
  for (int g = 0; g < CG; ++g) {
    chunk[g] = std::min(c0 + g, chunks - 1);
    width[g] = int(std::min<std::int64_t>(L, hd - chunk[g] * L));
  }
  auto load = [&](const float* at, int g) { return Whole ? Ops::load(at) : Ops::load_n(at, width[g]); };
  vf acc[QR][CG];
  UNMASK_CPU_UNROLL
  for (int r = 0; r < QR; ++r)
    UNMASK_CPU_UNROLL
    for (int g = 0; g < CG; ++g) acc[r][g] = load(o[r] + chunk[g] * L, g);
  for (std::int64_t j = 0; j < nk; ++j) {
    vf vv[CG];
    UNMASK_CPU_UNROLL
    for (int g = 0; g < CG; ++g) vv[g] = load(v + j * ldv + chunk[g] * L, g);
    UNMASK_CPU_UNROLL
    for (int r = 0; r < QR; ++r) {
      const vf pv = Ops::set1(p[r][j]);
      UNMASK_CPU_UNROLL
      for (int g = 0; g < CG; ++g) acc[r][g] = Ops::fma(pv, vv[g], acc[r][g]);
    }
  }
  UNMASK_CPU_UNROLL
  for (int r = 0; r < QR; ++r)
    UNMASK_CPU_UNROLL
    for (int g = 0; g < CG; ++g) {
      if (Whole) Ops::store(o[r] + chunk[g] * L, acc[r][g]);
      else Ops::store_n(o[r] + chunk[g] * L, acc[r][g], width[g]);
    }
}

// A register tile's shape as a type: rows x (keys or head-dim chunks).
template <int R, int C>
struct tile_shape {
  static constexpr int rows = R, cols = C;
};

// q (batch, q_len, heads, head_dim); k, v (slots, kv_capacity, kv_heads,
// head_dim); out (batch, q_len, heads, head_dim). See unmask/cpu/attention.hpp.
template <class Ops>
void attention_fused(const float* q, const float* k, const float* v, float* out, const attention_shape& s,
                     const attention_extents& e, attention_mask mask) {
  using K = attention_constants<Ops>;
  using vf = typename Ops::vf;
  constexpr int L = K::L, TL = K::TL;
  constexpr std::int64_t TK = K::TK, TKP = TK + 2 * K::RK;  // score rows have room for padding keys
  const std::int64_t group = s.heads / s.kv_heads, hd = s.head_dim;
  const std::int64_t rows_per_seq = s.q_len * group;  // (query, head-in-group) rows of one K/V head
  const std::int64_t tiles = (rows_per_seq + TL - 1) / TL;
  const std::int64_t ldq = s.heads * hd, ldkv = s.kv_heads * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  const std::int64_t chunks = (hd + L - 1) / L;
  const bool whole = hd % L == 0;  // every head-dim chunk a full vector
  constexpr float neg_inf = -std::numeric_limits<float>::infinity();

  // The rows of one head sit heads * head_dim floats apart, often a power of
  // two that maps them all to a few L1 sets: rows that are reused (a tile of
  // keys and values by every query row of a task, a task's query rows by
  // every key) would evict each other. So when several query rows share a
  // head, each head's K and V are first copied to contiguous memory, once
  // per call (K/V head (b, kvh) at `packed` + (b * kv_heads + kvh) * 2 *
  // kv_capacity * hd, keys then values), and each task copies its query
  // rows. A single query (decoding) streams every key once and reads in place.
  const bool copy = rows_per_seq >= 4;
  thread_local std::vector<float> packed_kv;
  if (copy) {
    packed_kv.resize(std::size_t(s.batch * s.kv_heads * 2 * s.kv_capacity * hd));
    float* dst = packed_kv.data();
    parallel_for(0, s.batch * s.kv_heads, [&](std::int64_t bh) {
      const std::int64_t b = bh / s.kv_heads, kvh = bh % s.kv_heads;
      const std::int64_t kv_length = e.kv_lengths ? e.kv_lengths[b] : s.kv_capacity;
      const std::int64_t slot = e.kv_slots ? e.kv_slots[b] : b;
      float* pk = dst + bh * 2 * s.kv_capacity * hd;
      float* pv = pk + s.kv_capacity * hd;
      for (std::int64_t j = 0; j < kv_length; ++j) {
        const std::int64_t at = ((slot * s.kv_capacity + j) * s.kv_heads + kvh) * hd;
        std::memcpy(pk + j * hd, k + at, std::size_t(hd) * sizeof(float));
        std::memcpy(pv + j * hd, v + at, std::size_t(hd) * sizeof(float));
      }
    }, 2 * s.kv_capacity * hd);
  }
  const float* packed = packed_kv.data();

  parallel_for(0, s.batch * s.kv_heads * tiles, [&](std::int64_t task) {
    const std::int64_t tile = task % tiles, kvh = (task / tiles) % s.kv_heads, b = task / (tiles * s.kv_heads);
    const std::int64_t q_length = e.q_lengths ? e.q_lengths[b] : s.q_len;
    const std::int64_t kv_length = e.kv_lengths ? e.kv_lengths[b] : s.kv_capacity;
    const std::int64_t offset = e.q_offsets ? e.q_offsets[b] : 0;
    const std::int64_t origin = e.mask_origins ? e.mask_origins[b] : 0;
    const std::int64_t slot = e.kv_slots ? e.kv_slots[b] : b;
    // Key j at keys + j * ld, in place or in the contiguous copy.
    const float* keys = copy ? packed + (b * s.kv_heads + kvh) * 2 * s.kv_capacity * hd
                             : k + (slot * s.kv_capacity * s.kv_heads + kvh) * hd;
    const float* values = copy ? keys + s.kv_capacity * hd : v + (slot * s.kv_capacity * s.kv_heads + kvh) * hd;
    const std::int64_t ld = copy ? hd : ldkv;

    // The task's rows (query i, head h); rows of padding queries are zeros.
    const float* qrow[TL];
    float* orow[TL];
    std::int64_t key_end[TL];
    int n = 0;
    std::int64_t key_max = 0;
    for (std::int64_t r = tile * TL; r < std::min(rows_per_seq, (tile + 1) * TL); ++r) {
      const std::int64_t i = r / group, h = kvh * group + r % group;
      float* o = out + ((b * s.q_len + i) * s.heads + h) * hd;
      const std::int64_t end = i < q_length ? mask.key_end(offset + i, kv_length, origin) : 0;
      if (end <= 0) {
        std::fill(o, o + hd, 0.0f);
        continue;
      }
      qrow[n] = q + (b * s.q_len + i) * ldq + h * hd;
      orow[n] = o;
      key_end[n] = end;
      key_max = std::max(key_max, end);
      ++n;
    }
    if (n == 0) return;

    thread_local std::vector<float> scratch;
    scratch.resize(std::size_t((TL + 1) * TKP + 2 * TL * hd));
    float* pbuf = scratch.data();                  // (TL + 1, TKP): scores, then probabilities; row TL is spare
    float* obuf = scratch.data() + (TL + 1) * TKP;  // (TL, hd) unnormalised outputs
    float* qbuf = obuf + TL * hd;                  // (TL, hd) the query rows, contiguous
    if (copy)
      for (int r = 0; r < n; ++r) {
        std::memcpy(qbuf + r * hd, qrow[r], std::size_t(hd) * sizeof(float));
        qrow[r] = qbuf + r * hd;
      }
    std::fill(obuf, obuf + n * hd, 0.0f);
    float m[TL], l[TL];
    for (int r = 0; r < n; ++r) m[r] = neg_inf, l[r] = 0.0f;

    // Rows past n repeat row n - 1 (and write scores to the spare row).
    const float* kt = nullptr;  // the current tile's keys and values
    const float* vt = nullptr;
    // Keys in the outer loop: a group of KR key rows stays in L1 while every
    // query row passes it.
    auto scores = [&](auto shape, std::int64_t nk) {
      constexpr int QR = decltype(shape)::rows, KR = decltype(shape)::cols;
      for (std::int64_t c0 = 0; c0 < nk; c0 += KR) {
        const float* ks[KR];
        for (int j = 0; j < KR; ++j) ks[j] = kt + std::min<std::int64_t>(c0 + j, nk - 1) * ld;
        for (int r0 = 0; r0 < n; r0 += QR) {
          const float* qs[QR];
          float* ps[QR];
          for (int r = 0; r < QR; ++r) {
            qs[r] = qrow[std::min(r0 + r, n - 1)];
            ps[r] = pbuf + (r0 + r < n ? r0 + r : TL) * TKP + c0;
          }
          if (whole) score_tile<Ops, QR, KR, true>(qs, ks, hd, scale, ps);
          else score_tile<Ops, QR, KR, false>(qs, ks, hd, scale, ps);
        }
      }
    };
    // Head-dim chunks in the outer loop: a column of V stays in L1 while
    // every query row passes it.
    auto update = [&](auto shape, std::int64_t nk) {
      constexpr int QR = decltype(shape)::rows, CG = decltype(shape)::cols;
      for (std::int64_t c0 = 0; c0 < chunks; c0 += CG)
        for (int r0 = 0; r0 < n; r0 += QR) {
          const float* ps[QR];
          float* os[QR];
          for (int r = 0; r < QR; ++r) {
            const int row = std::min(r0 + r, n - 1);  // a repeated row computes and stores the same values
            ps[r] = pbuf + row * TKP;
            os[r] = obuf + row * hd;
          }
          if (whole) output_tile<Ops, QR, CG, true>(ps, vt, ld, nk, c0, hd, os);
          else output_tile<Ops, QR, CG, false>(ps, vt, ld, nk, c0, hd, os);
        }
    };

    for (std::int64_t j0 = 0; j0 < key_max; j0 += TK) {
      const std::int64_t nk = std::min(TK, key_max - j0);
      kt = keys + j0 * ld, vt = values + j0 * ld;
      if (n == 1) scores(tile_shape<1, 2 * K::RK>{}, nk);
      else scores(tile_shape<K::RL, K::RK>{}, nk);
      // Online softmax per row over the whole TK-wide tile (entries past nk
      // or past the row's key end are -inf and become exact zeros).
      for (int r = 0; r < n; ++r) {
        float* pr = pbuf + r * TKP;
        const std::int64_t visible = std::min<std::int64_t>(TK, std::max<std::int64_t>(0, key_end[r] - j0));
        std::fill(pr + visible, pr + TK, neg_inf);
        vf vmax = Ops::load(pr);
        for (std::int64_t j = L; j < TK; j += L) vmax = Ops::max(vmax, Ops::load(pr + j));
        const float m_new = std::max(m[r], Ops::hmax(vmax));
        const float m_used = m_new == neg_inf ? 0.0f : m_new;
        const vf shift = Ops::set1(m_used);
        vf sum = Ops::zero();
        for (std::int64_t j = 0; j < TK; j += L) {
          const vf p = vexp<Ops>(Ops::load(pr + j) - shift);
          Ops::store(pr + j, p);
          sum = sum + p;
        }
        const float alpha = Ops::lane(vexp<Ops>(Ops::set1(m[r] - m_used)), 0);
        l[r] = l[r] * alpha + Ops::hsum(sum);
        m[r] = m_new;
        if (alpha != 1.0f) {
          float* o = obuf + r * hd;
          const vf a = Ops::set1(alpha);
          for (std::int64_t c = 0; c < chunks; ++c) {
            const int w = int(std::min<std::int64_t>(L, hd - c * L));
            Ops::store_n(o + c * L, Ops::load_n(o + c * L, w) * a, w);
          }
        }
      }
      if (n == 1) update(tile_shape<1, 2 * K::CG>{}, nk);
      else update(tile_shape<K::RL, K::CG>{}, nk);
    }
    for (int r = 0; r < n; ++r) {
      const float inv = 1.0f / l[r];
      for (std::int64_t d = 0; d < hd; ++d) orow[r][d] = obuf[r * hd + d] * inv;
    }
  }, 4 * s.kv_capacity * hd * std::min<std::int64_t>(TL, rows_per_seq));  // multiply-adds of a task
}
