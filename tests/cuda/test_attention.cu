// Fused attention (unmask/cuda/attention.hpp) against unmask::cpu::attention
// on the same q, k, v values widened to float.
//
// Host tests, which run everywhere: the launcher rejects bad sizes, masks and
// null pointers before any CUDA call; the row geometry (positions, key_end,
// padding rows, GQA head and slot offsets) and the online-softmax step give
// the documented values; and the kernel's order of work (blocks of 16 query
// rows, keys folded 32 at a time up to the block's largest key_end, online
// softmax per row), replayed on the host with the header's own host/device
// functions, matches the CPU reference on every case below.
//
// Device tests (skipped without a GPU), float / half / bfloat16: full,
// causal and block-causal masks (block sizes 3, 8 and 16, nonzero mask
// origins); grouped-query heads (8 heads on 2 and on 1 K/V heads); query
// blocks decoded against a longer key range (q_offsets, kv_lengths); K/V
// slots permuted; per-sequence q_lengths whose padding rows must be zero;
// odd sizes (37 queries, 101 keys, head_dim 2, 24, 33, 40, 64, 128, 200,
// 256); rows that see no key (a zero key count, a causal row before position
// 0), which must be zero; misaligned buffers (the element-by-element path).
// Outputs are poisoned with NaN before each run. Tolerance, relative to the
// largest |output| of the case: 1e-5 for float, 1e-5 plus one rounding unit
// of T for the 16-bit types (the kernel rounds its fp32 result once);
// expected-zero rows must be exactly zero.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "unmask/cpu/attention.hpp"
#include "unmask/cuda/attention.hpp"

namespace unmask {
namespace {

using test::device_array;

// ---- the cases ---------------------------------------------------------------

struct attention_case {
  std::string name;
  attention_shape s;
  attention_mask mask = attention_mask::full();
  std::vector<std::int32_t> q_offsets, q_lengths, kv_lengths, kv_slots, mask_origins;  // empty: null
  std::int64_t slots = 0;    // K/V sequences in the buffers; 0: batch
  bool misaligned = false;   // buffers one element past a 16-byte boundary
  bool zero_rows = false;    // the case must contain rows that produce zeros
};

attention_shape shape(std::int64_t batch, std::int64_t q_len, std::int64_t kv_capacity, std::int64_t heads,
                      std::int64_t kv_heads, std::int64_t head_dim) {
  attention_shape s;
  s.batch = batch;
  s.q_len = q_len;
  s.kv_capacity = kv_capacity;
  s.heads = heads;
  s.kv_heads = kv_heads;
  s.head_dim = head_dim;
  return s;
}

std::vector<attention_case> all_cases() {
  std::vector<attention_case> cases;
  auto add = [&](std::string name, attention_shape s, attention_mask mask) -> attention_case& {
    attention_case c;
    c.name = std::move(name);
    c.s = s;
    c.mask = mask;
    cases.push_back(c);
    return cases.back();
  };
  add("full", shape(2, 16, 16, 4, 4, 64), attention_mask::full());
  add("causal", shape(2, 33, 33, 2, 2, 64), attention_mask::causal());
  add("block_causal_3", shape(3, 29, 29, 2, 2, 32), attention_mask::block_causal(3)).mask_origins = {5, 0, 11};
  add("block_causal_16", shape(2, 64, 64, 2, 2, 128), attention_mask::block_causal(16)).mask_origins = {7, 20};
  add("gqa_8_on_2", shape(2, 20, 20, 8, 2, 64), attention_mask::causal());
  add("gqa_8_on_1", shape(2, 19, 19, 8, 1, 40), attention_mask::full());
  {
    // 7 queries at offsets 20 and 29 against 40 and 36 cached keys.
    attention_case& added = add("cache_full", shape(2, 7, 40, 4, 2, 64), attention_mask::full());
    added.q_offsets = {20, 29};
    added.kv_lengths = {40, 36};
    const attention_case c = added;  // a copy: push_back below may move `added`
    attention_case causal = c;
    causal.name = "cache_causal";
    causal.mask = attention_mask::causal();
    cases.push_back(causal);
    attention_case block = c;
    block.name = "cache_block_causal_8";
    block.mask = attention_mask::block_causal(8);
    block.mask_origins = {16, 4};
    cases.push_back(block);
  }
  {
    attention_case& c = add("kv_slots_permuted", shape(3, 12, 12, 2, 2, 64), attention_mask::causal());
    c.slots = 4;
    c.kv_slots = {2, 0, 3};
  }
  {
    attention_case& c = add("q_lengths_padding", shape(3, 12, 12, 4, 2, 64), attention_mask::full());
    c.q_lengths = {10, 3, 0};
    c.kv_lengths = {12, 5, 9};
    c.zero_rows = true;
  }
  {
    attention_case& c = add("odd_37x101_hd40", shape(2, 37, 101, 4, 2, 40), attention_mask::block_causal(16));
    c.q_offsets = {64, 50};
    c.kv_lengths = {101, 87};
    c.mask_origins = {30, 0};
  }
  add("odd_37x101_hd64", shape(1, 37, 101, 2, 1, 64), attention_mask::causal()).q_offsets = {64};
  add("odd_37x101_hd128", shape(1, 37, 101, 4, 4, 128), attention_mask::full()).kv_lengths = {99};
  add("many_keys_hd128", shape(1, 33, 300, 2, 2, 128), attention_mask::full());
  add("head_dim_256", shape(1, 20, 50, 2, 2, 256), attention_mask::causal()).q_offsets = {30};
  add("head_dim_200", shape(1, 10, 70, 2, 2, 200), attention_mask::full());
  add("head_dim_33", shape(1, 10, 45, 2, 2, 33), attention_mask::full());
  add("head_dim_24", shape(1, 17, 17, 2, 2, 24), attention_mask::causal());
  add("head_dim_2", shape(2, 9, 9, 3, 1, 2), attention_mask::full());
  {
    // Sequence 0: rows 0-2 sit before position 0 (causal: no key); sequence
    // 1 has no keys at all; sequence 2 has 3 padding rows.
    attention_case& c = add("rows_without_keys", shape(3, 8, 8, 2, 2, 64), attention_mask::causal());
    c.q_offsets = {-3, 0, 0};
    c.kv_lengths = {8, 0, 8};
    c.q_lengths = {8, 8, 5};
    c.zero_rows = true;
  }
  add("misaligned_hd64", shape(2, 16, 16, 2, 2, 64), attention_mask::causal()).misaligned = true;
  add("misaligned_hd40", shape(1, 21, 30, 4, 2, 40), attention_mask::full()).misaligned = true;
  return cases;
}

const std::int32_t* or_null(const std::vector<std::int32_t>& v) { return v.empty() ? nullptr : v.data(); }

attention_extents host_extents(const attention_case& c) {
  attention_extents e;
  e.q_offsets = or_null(c.q_offsets);
  e.q_lengths = or_null(c.q_lengths);
  e.kv_lengths = or_null(c.kv_lengths);
  e.kv_slots = or_null(c.kv_slots);
  e.mask_origins = or_null(c.mask_origins);
  return e;
}

std::int64_t slots_of(const attention_case& c) { return c.slots > 0 ? c.slots : c.s.batch; }
std::size_t q_elements(const attention_case& c) {
  return std::size_t(c.s.batch * c.s.q_len * c.s.heads * c.s.head_dim);
}
std::size_t kv_elements(const attention_case& c) {
  return std::size_t(slots_of(c) * c.s.kv_capacity * c.s.kv_heads * c.s.head_dim);
}

// Whether (sequence b, query row i) must be all zeros, from the mask directly.
bool zero_row(const attention_case& c, std::int64_t b, std::int64_t i) {
  const std::int64_t q_length = c.q_lengths.empty() ? c.s.q_len : c.q_lengths[std::size_t(b)];
  if (i >= q_length) return true;
  const std::int64_t kv_length = c.kv_lengths.empty() ? c.s.kv_capacity : c.kv_lengths[std::size_t(b)];
  const std::int64_t position = (c.q_offsets.empty() ? 0 : c.q_offsets[std::size_t(b)]) + i;
  const std::int64_t origin = c.mask_origins.empty() ? 0 : c.mask_origins[std::size_t(b)];
  return c.mask.key_end(position, kv_length, origin) <= 0;
}

struct case_inputs {
  std::vector<float> q, k, v, want;
};

// Random q, k, v of type T and the CPU's attention on them widened to float.
template <class T>
case_inputs make_inputs(const attention_case& c, std::uint32_t seed, std::vector<T>& q, std::vector<T>& k,
                        std::vector<T>& v) {
  q = test::random_elements<T>(q_elements(c), seed, 1.0f);
  k = test::random_elements<T>(kv_elements(c), seed + 1, 1.0f);
  v = test::random_elements<T>(kv_elements(c), seed + 2, 1.0f);
  case_inputs in{test::widen(q), test::widen(k), test::widen(v), std::vector<float>(q_elements(c))};
  cpu::attention(in.q.data(), in.k.data(), in.v.data(), in.want.data(), c.s, host_extents(c), c.mask);
  return in;
}

// Compares got (widened) with want; `unit` is the output type's rounding unit (0 for float).
void expect_close(const attention_case& c, const std::vector<float>& got, const std::vector<float>& want,
                  double unit) {
  double largest = 0;
  for (float w : want) largest = std::max(largest, double(std::fabs(w)));
  const double tolerance = (1e-5 + unit) * largest + 1e-7;
  const std::int64_t hd = c.s.head_dim;
  int failures = 0, zeros = 0;
  for (std::int64_t b = 0; b < c.s.batch; ++b) {
    for (std::int64_t i = 0; i < c.s.q_len; ++i) {
      const bool zero = zero_row(c, b, i);
      zeros += zero;
      for (std::int64_t h = 0; h < c.s.heads; ++h) {
        for (std::int64_t d = 0; d < hd && failures < 10; ++d) {
          const std::size_t at = std::size_t(((b * c.s.q_len + i) * c.s.heads + h) * hd + d);
          const bool ok = zero ? got[at] == 0.0f : std::fabs(double(got[at]) - double(want[at])) <= tolerance;
          if (!ok) {
            ++failures;
            ADD_FAILURE() << "sequence " << b << " row " << i << " head " << h << " dim " << d << ": " << got[at]
                          << " vs " << want[at] << (zero ? " (must be zero)" : "") << ", tolerance " << tolerance;
          }
        }
      }
    }
  }
  if (c.zero_rows) EXPECT_GT(zeros, 0) << "the case was meant to have rows that produce zeros";
}

// ---- host tests ----------------------------------------------------------------

TEST(CudaAttentionHost, LauncherChecksItsArguments) {
  float q[64] = {}, k[64] = {}, v[64] = {}, out[64];
  const attention_extents e;
  const attention_mask full = attention_mask::full();
  const attention_shape good = shape(1, 2, 2, 2, 1, 16);
  auto call = [&](attention_shape s, attention_mask m = attention_mask::full()) {
    return cuda::attention(q, k, v, out, s, e, m, nullptr);
  };
  auto with = [&](auto change) {
    attention_shape s = good;
    change(s);
    return s;
  };
  EXPECT_EQ(call(with([](attention_shape& s) { s.batch = -1; })), cudaErrorInvalidValue);
  EXPECT_EQ(call(with([](attention_shape& s) { s.batch = 65536; })), cudaErrorInvalidValue);
  EXPECT_EQ(call(with([](attention_shape& s) { s.q_len = -1; })), cudaErrorInvalidValue);
  EXPECT_EQ(call(with([](attention_shape& s) { s.q_len = std::int64_t(INT32_MAX) + 1; })), cudaErrorInvalidValue);
  EXPECT_EQ(call(with([](attention_shape& s) { s.kv_capacity = 0; })), cudaErrorInvalidValue);
  EXPECT_EQ(call(with([](attention_shape& s) { s.kv_capacity = std::int64_t(INT32_MAX) + 1; })),
            cudaErrorInvalidValue);
  EXPECT_EQ(call(with([](attention_shape& s) { s.heads = 0; })), cudaErrorInvalidValue);
  EXPECT_EQ(call(with([](attention_shape& s) { s.heads = 65536; })), cudaErrorInvalidValue);
  EXPECT_EQ(call(with([](attention_shape& s) { s.kv_heads = 0; })), cudaErrorInvalidValue);
  EXPECT_EQ(call(with([](attention_shape& s) { s.kv_heads = -2; })), cudaErrorInvalidValue);
  EXPECT_EQ(call(with([](attention_shape& s) {
              s.heads = 3;
              s.kv_heads = 2;
            })),
            cudaErrorInvalidValue);
  EXPECT_EQ(call(with([](attention_shape& s) { s.head_dim = 0; })), cudaErrorInvalidValue);
  EXPECT_EQ(call(with([](attention_shape& s) { s.head_dim = 257; })), cudaErrorInvalidValue);
  EXPECT_EQ(call(good, attention_mask{attention_kind::block_causal, 0}), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::attention<float>(nullptr, k, v, out, good, e, full, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::attention<float>(q, nullptr, v, out, good, e, full, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::attention<float>(q, k, nullptr, out, good, e, full, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cuda::attention<float>(q, k, v, nullptr, good, e, full, nullptr), cudaErrorInvalidValue);
  const half* hq = nullptr;
  EXPECT_EQ(cuda::attention<half>(hq, hq, hq, nullptr, good, e, full, nullptr), cudaErrorInvalidValue);
  // Nothing to do: no CUDA call either.
  EXPECT_EQ(call(with([](attention_shape& s) { s.batch = 0; })), cudaSuccess);
  EXPECT_EQ(call(with([](attention_shape& s) { s.q_len = 0; })), cudaSuccess);
}

TEST(CudaAttentionHost, RowGeometry) {
  // 2 sequences, 6 query rows at offsets 20 / 3, K/V capacity 40, 8 heads
  // on 2 K/V heads, head_dim 4, K/V slots 3 and 1, block-causal (8) from
  // origins 16 / 0.
  const attention_shape s = shape(2, 6, 40, 8, 2, 4);
  const std::int32_t offsets[] = {20, 3}, q_lengths[] = {6, 4}, kv_lengths[] = {40, 50}, slots[] = {3, 1},
                     origins[] = {16, 0};
  const attention_extents e{offsets, q_lengths, kv_lengths, slots, origins};
  const attention_mask mask = attention_mask::block_causal(8);
  const cuda::attention_row r0 = cuda::attention_row_of(s, e, mask, 0, 5, 0);
  EXPECT_EQ(r0.key_end, 24);                       // position 20: block 0 from origin 16 -> keys [0, 24)
  EXPECT_EQ(r0.q_at, (0 * 6 + 0) * 8 * 4 + 5 * 4);  // ((b * q_len + i) * heads + h) * head_dim
  EXPECT_EQ(r0.kv_at, (3 * 40 * 2 + 1) * 4);       // slot 3, K/V head 5 / 4 = 1
  EXPECT_EQ(cuda::attention_row_of(s, e, mask, 0, 0, 4).key_end, 32);  // position 24: block 1
  EXPECT_EQ(cuda::attention_row_of(s, e, mask, 0, 0, 5).key_end, 32);
  const cuda::attention_row r1 = cuda::attention_row_of(s, e, mask, 1, 3, 2);
  EXPECT_EQ(r1.key_end, 8);  // position 5: block 0 from origin 0
  EXPECT_EQ(r1.q_at, ((1 * 6 + 2) * 8 + 3) * 4);
  EXPECT_EQ(r1.kv_at, (1 * 40 * 2 + 0) * 4);
  EXPECT_EQ(cuda::attention_row_of(s, e, mask, 1, 3, 4).key_end, 0);  // padding row (q_lengths[1] = 4)
  EXPECT_EQ(cuda::attention_row_of(s, e, mask, 1, 3, 4).q_at, ((1 * 6 + 4) * 8 + 3) * 4);
  // Full mask: every key of the sequence; a key count past the capacity is clamped.
  EXPECT_EQ(cuda::attention_row_of(s, e, attention_mask::full(), 0, 0, 0).key_end, 40);
  EXPECT_EQ(cuda::attention_row_of(s, e, attention_mask::full(), 1, 0, 0).key_end, 40);
  // Defaults: offset 0, all rows, all keys, slot b, origin 0.
  const attention_extents none;
  EXPECT_EQ(cuda::attention_row_of(s, none, attention_mask::causal(), 1, 7, 5).key_end, 6);
  EXPECT_EQ(cuda::attention_row_of(s, none, attention_mask::causal(), 1, 7, 5).kv_at, (1 * 40 * 2 + 1) * 4);
  EXPECT_EQ(cuda::attention_key_stride(128), 129);
  EXPECT_EQ(cuda::attention_key_stride(33), 33);
  EXPECT_EQ(cuda::attention_shared_bytes(128), 4u * (16 * 128 + 32 * 129 + 32 * 128));
}

TEST(CudaAttentionHost, OnlineSoftmaxFoldsTiles) {
  const float scores[] = {0.5f, -1.0f, 2.0f, 0.25f, 3.5f, -4.0f, 1.0f};
  float maximum = -INFINITY, direct = 0;
  for (float x : scores) maximum = std::max(maximum, x);
  for (float x : scores) direct += std::exp(x - maximum);
  for (int tile : {1, 2, 3, 7}) {
    cuda::online_softmax state;
    float weighted = 0;  // sum of e^(s - max) * s, rescaled like an output accumulator
    for (int t0 = 0; t0 < 7; t0 += tile) {
      float tile_max = -INFINITY;
      for (int j = t0; j < std::min(7, t0 + tile); ++j) tile_max = std::max(tile_max, scores[j]);
      weighted *= state.rescale(tile_max);
      float sum = 0;
      for (int j = t0; j < std::min(7, t0 + tile); ++j) {
        const float p = std::exp(scores[j] - state.max);
        sum += p;
        weighted += p * scores[j];
      }
      state.add(sum);
    }
    EXPECT_EQ(state.max, maximum) << "tile " << tile;
    EXPECT_NEAR(state.sum, direct, 1e-6 * direct) << "tile " << tile;
    float want = 0;
    for (float x : scores) want += std::exp(x - maximum) * x;
    EXPECT_NEAR(weighted, want, 1e-5 * std::fabs(want)) << "tile " << tile;
  }
  cuda::online_softmax fresh;
  EXPECT_EQ(fresh.rescale(-INFINITY), 1.0f);  // no e^(-inf + inf)
  EXPECT_EQ(fresh.sum, 0.0f);
  EXPECT_EQ(fresh.rescale(2.0f), 0.0f);  // from -inf: the (empty) sum is scaled by 0
  EXPECT_EQ(fresh.max, 2.0f);
}

// The kernel's order of work on the host: per (sequence, head, block of
// query rows), keys up to the block's largest key_end folded a key tile at a
// time into each row's online softmax, with the header's geometry.
void replay_kernel(const float* q, const float* k, const float* v, float* out, const attention_shape& s,
                   const attention_extents& e, attention_mask mask) {
  const float scale = 1.0f / std::sqrt(float(s.head_dim));
  const std::int64_t hd = s.head_dim, kv_row_stride = s.kv_heads * hd;
  const std::int64_t tiles = (s.q_len + cuda::attention_query_tile - 1) / cuda::attention_query_tile;
  for (std::int64_t b = 0; b < s.batch; ++b) {
    for (std::int64_t h = 0; h < s.heads; ++h) {
      for (std::int64_t tile = 0; tile < tiles; ++tile) {
        const std::int64_t first = tile * cuda::attention_query_tile;
        std::vector<cuda::attention_row> rows;
        std::int64_t block_end = 0;
        for (std::int64_t i = first; i < std::min(s.q_len, first + cuda::attention_query_tile); ++i) {
          rows.push_back(cuda::attention_row_of(s, e, mask, b, h, i));
          block_end = std::max(block_end, rows.back().key_end);
        }
        const std::int64_t kv_at = cuda::attention_kv_at(s, e, b, h);
        std::vector<cuda::online_softmax> state(rows.size());
        std::vector<float> acc(rows.size() * std::size_t(hd), 0.0f);
        for (std::int64_t t0 = 0; t0 < block_end; t0 += cuda::attention_key_tile) {
          const std::int64_t count = std::min<std::int64_t>(cuda::attention_key_tile, block_end - t0);
          for (std::size_t r = 0; r < rows.size(); ++r) {
            if (rows[r].key_end <= t0) continue;
            const std::int64_t valid = std::min(count, rows[r].key_end - t0);
            float score[cuda::attention_key_tile], tile_max = -INFINITY;
            for (std::int64_t j = 0; j < valid; ++j) {
              float dot = 0;
              const float* key = k + kv_at + (t0 + j) * kv_row_stride;
              for (std::int64_t d = 0; d < hd; ++d) dot += q[rows[r].q_at + d] * key[d];
              score[j] = dot * scale;
              tile_max = std::max(tile_max, score[j]);
            }
            const float factor = state[r].rescale(tile_max);
            float sum = 0;
            float* a = acc.data() + r * std::size_t(hd);
            for (std::int64_t d = 0; d < hd; ++d) a[d] *= factor;
            for (std::int64_t j = 0; j < valid; ++j) {
              const float p = std::exp(score[j] - state[r].max);
              sum += p;
              for (std::int64_t d = 0; d < hd; ++d) a[d] += p * v[kv_at + (t0 + j) * kv_row_stride + d];
            }
            state[r].add(sum);
          }
        }
        for (std::size_t r = 0; r < rows.size(); ++r)
          for (std::int64_t d = 0; d < hd; ++d)
            out[rows[r].q_at + d] = rows[r].key_end > 0 ? acc[r * std::size_t(hd) + d] / state[r].sum : 0.0f;
      }
    }
  }
}

TEST(CudaAttentionHost, KernelOrderOfWorkMatchesCpu) {
  std::uint32_t seed = 1000;
  for (const attention_case& c : all_cases()) {
    SCOPED_TRACE(c.name);
    std::vector<float> q, k, v;
    const case_inputs in = make_inputs<float>(c, seed += 10, q, k, v);
    std::vector<float> got(q_elements(c), NAN);
    replay_kernel(in.q.data(), in.k.data(), in.v.data(), got.data(), c.s, host_extents(c), c.mask);
    expect_close(c, got, in.want, 0.0);
  }
}

// ---- device tests ----------------------------------------------------------------

template <class T>
std::vector<T> with_offset(const std::vector<T>& v, bool misaligned) {
  std::vector<T> out;
  if (misaligned) out.push_back(cuda::from_float<T>(0.0f));
  out.insert(out.end(), v.begin(), v.end());
  return out;
}

template <class T>
void check_case(const attention_case& c, std::uint32_t seed) {
  SCOPED_TRACE(c.name + " " + test::type_name<T>());
  std::vector<T> q, k, v;
  const case_inputs in = make_inputs<T>(c, seed, q, k, v);
  const std::size_t pad = c.misaligned ? 1 : 0;
  device_array<T> d_q, d_k, d_v, d_out;
  UNMASK_CUDA_OK(d_q.upload(with_offset(q, c.misaligned)));
  UNMASK_CUDA_OK(d_k.upload(with_offset(k, c.misaligned)));
  UNMASK_CUDA_OK(d_v.upload(with_offset(v, c.misaligned)));
  UNMASK_CUDA_OK(d_out.allocate(q_elements(c) + pad));
  UNMASK_CUDA_OK(d_out.poison());
  device_array<std::int32_t> d_offsets, d_q_lengths, d_kv_lengths, d_slots, d_origins;
  auto device_or_null = [](device_array<std::int32_t>& d, const std::vector<std::int32_t>& h) -> const std::int32_t* {
    if (h.empty()) return nullptr;
    EXPECT_EQ(d.upload(h), cudaSuccess);
    return d.data;
  };
  attention_extents e;
  e.q_offsets = device_or_null(d_offsets, c.q_offsets);
  e.q_lengths = device_or_null(d_q_lengths, c.q_lengths);
  e.kv_lengths = device_or_null(d_kv_lengths, c.kv_lengths);
  e.kv_slots = device_or_null(d_slots, c.kv_slots);
  e.mask_origins = device_or_null(d_origins, c.mask_origins);
  UNMASK_CUDA_OK(cuda::attention<T>(d_q.data + pad, d_k.data + pad, d_v.data + pad, d_out.data + pad, c.s, e, c.mask,
                                    nullptr));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<T> raw;
  UNMASK_CUDA_OK(d_out.download(raw));
  std::vector<float> got(q_elements(c));
  for (std::size_t i = 0; i < got.size(); ++i) got[i] = to_float(raw[i + pad]);
  expect_close(c, got, in.want, std::is_same_v<T, float> ? 0.0 : test::rounding_unit<T>());
}

template <class T>
void check_all_cases(std::uint32_t seed) {
  for (const attention_case& c : all_cases()) check_case<T>(c, seed += 10);
}

TEST(CudaAttention, MatchesCpuFloat) {
  UNMASK_REQUIRE_DEVICE();
  check_all_cases<float>(100);
}

TEST(CudaAttention, MatchesCpuHalf) {
  UNMASK_REQUIRE_DEVICE();
  check_all_cases<half>(200);
}

TEST(CudaAttention, MatchesCpuBFloat16) {
  UNMASK_REQUIRE_DEVICE();
  check_all_cases<bfloat16>(300);
}

}  // namespace
}  // namespace unmask
