// unmask/cpu/kernels/vocab.inl  (compiled once per instruction set: unmask/cpu/simd/kernels.hpp)
//
// The statistics of one row of logits that greedy token choice and every
// confidence metric need (unmask/policy/vocab_stats.hpp): the maximum and its
// first index, the runner-up, the best index other than an excluded token
// (the mask), sum e^(l - max) and sum e^(l - max)(l - max). The reference
// (vocab_stats::push) is one serial online pass with an expf per logit; here
// it is vector passes (maxima, a scan for the first index, the sums with the
// kernels' exp in four accumulators): maxima and indices are exact, the sums
// agree to rounding. NaN logits are skipped by the maxima, as by the
// reference's comparisons.

// The largest value in [begin, end) (-inf when empty); NaN never wins.
template <class Ops>
UNMASK_SIMD_INLINE float row_max(const float* x, std::int64_t begin, std::int64_t end) {
  using vf = typename Ops::vf;
  constexpr int L = Ops::lanes;
  vf m = Ops::set1(-std::numeric_limits<float>::infinity());
  std::int64_t i = begin;
  for (; i + L <= end; i += L) m = Ops::max(Ops::load(x + i), m);  // max(x, m) keeps m when x is NaN
  float best = Ops::hmax(m);
  for (; i < end; ++i) best = x[i] > best ? x[i] : best;
  return best;
}

// The first index in [0, n) other than `skip` whose value is `value` (-1: none).
inline std::int64_t first_index_of(const float* x, std::int64_t n, float value, std::int64_t skip = -1) {
  for (std::int64_t i = 0; i < n; ++i)
    if (x[i] == value && i != skip) return i;
  return -1;
}

// The maximum of a row, its first index, the runner-up (the largest value
// once that first maximum is taken out) and the best token other than
// `excluded` (-1 when no logit is above -inf); false when no logit is.
template <class Ops>
bool row_top(const float* logits, std::int64_t vocab, std::int32_t excluded, float& top, std::int64_t& at,
             float& second, std::int32_t& best_token) {
  constexpr float neg_inf = -std::numeric_limits<float>::infinity();
  best_token = -1;
  top = row_max<Ops>(logits, 0, vocab);
  if (!(top > neg_inf)) return false;
  at = first_index_of(logits, vocab, top);
  second = std::max(row_max<Ops>(logits, 0, at), row_max<Ops>(logits, at + 1, vocab));
  if (at != excluded) best_token = std::int32_t(at);
  else if (second > neg_inf) best_token = std::int32_t(first_index_of(logits, vocab, second, excluded));
  return true;
}

// The best token other than `excluded` alone (-1 when no logit is above -inf).
template <class Ops>
std::int32_t row_best_token(const float* logits, std::int64_t vocab, std::int32_t excluded) {
  float top = 0.0f, second = 0.0f;
  std::int64_t at = 0;
  std::int32_t best = -1;
  row_top<Ops>(logits, vocab, excluded, top, at, second, best);
  return best;
}

// Stats of one row of logits, and the best token other than `excluded`
// (-1 when no logit is above -inf).
template <class Ops>
void vocab_row_stats(const float* logits, std::int64_t vocab, std::int32_t excluded, vocab_stats& stats,
                     std::int32_t& best_token) {
  using vf = typename Ops::vf;
  using vi = typename Ops::vi;
  constexpr int L = Ops::lanes;
  stats = vocab_stats{};
  float top = 0.0f, second = 0.0f;
  std::int64_t at = 0;
  if (!row_top<Ops>(logits, vocab, excluded, top, at, second, best_token)) return;
  // sum e^d and sum e^d d, d = l - max; lanes past the row count as zero. In
  // the second sum d is clamped at -104, where e^d is already 0, so a -inf
  // logit adds 0 (not 0 * -inf).
  const vf shift = Ops::set1(top), floor = Ops::set1(-104.0f);
  vf s[4] = {Ops::zero(), Ops::zero(), Ops::zero(), Ops::zero()};
  vf t[4] = {Ops::zero(), Ops::zero(), Ops::zero(), Ops::zero()};
  std::int64_t i = 0;
  for (; i + 4 * L <= vocab; i += 4 * L)
    for (int a = 0; a < 4; ++a) {
      const vf d = Ops::load(logits + i + a * L) - shift;
      const vf e = vexp<Ops>(d);
      s[a] = s[a] + e;
      t[a] = Ops::fma(e, Ops::max(d, floor), t[a]);
    }
  std::int32_t lane_index[L];
  for (int j = 0; j < L; ++j) lane_index[j] = j;
  for (; i < vocab; i += L) {
    const vi inside = Ops::loadi(lane_index) < Ops::set1i(std::int32_t(std::min<std::int64_t>(L, vocab - i)));
    const vf d = Ops::select(inside, Ops::load_n(logits + i, int(std::min<std::int64_t>(L, vocab - i))) - shift, Ops::zero());
    const vf e = Ops::select(inside, vexp<Ops>(d), Ops::zero());
    s[0] = s[0] + e;
    t[0] = Ops::fma(e, Ops::max(d, floor), t[0]);
  }
  stats.max_logit = top;
  stats.second_logit = second;
  stats.argmax = std::int32_t(at);
  stats.sum_exp = Ops::hsum((s[0] + s[1]) + (s[2] + s[3]));
  stats.sum_exp_delta = Ops::hsum((t[0] + t[1]) + (t[2] + t[3]));
}
