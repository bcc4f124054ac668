// The fp32-unit attention kernel (unmask/cuda/attention_reference.hpp)
// against unmask::cpu::attention on the same q, k, v values widened to float
// (the cases: tests/cuda/attention_cases.hpp).
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

#include "cuda/attention_cases.hpp"
#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "unmask/cpu/attention.hpp"
#include "unmask/cuda/attention.hpp"

namespace unmask {
namespace {

using namespace unmask::test;

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
  for (const attention_case& c : attention_cases()) {
    SCOPED_TRACE(c.name);
    std::vector<float> q, k, v;
    const case_inputs in = make_inputs<float>(c, seed += 10, q, k, v);
    std::vector<float> got(q_elements(c), NAN);
    replay_kernel(in.q.data(), in.k.data(), in.v.data(), got.data(), c.s, host_extents(c), c.mask);
    expect_close(c, got, in.want, reference_tolerance(in.want, 0.0));
  }
}

// ---- device tests ----------------------------------------------------------------

template <class T>
void check_case(const attention_case& c, std::uint32_t seed) {
  SCOPED_TRACE(c.name + " " + test::type_name<T>());
  std::vector<T> q, k, v;
  const case_inputs in = make_inputs<T>(c, seed, q, k, v);
  std::vector<float> got;
  run_on_device(
      c, q, k, v,
      [&](const T* dq, const T* dk, const T* dv, T* dout, const attention_extents& e) {
        return cuda::attention_reference<T>(dq, dk, dv, dout, c.s, e, c.mask, nullptr);
      },
      got);
  if (got.empty()) return;
  expect_close(c, got, in.want, reference_tolerance(in.want, std::is_same_v<T, float> ? 0.0 : rounding_unit<T>()));
}

template <class T>
void check_all_cases(std::uint32_t seed) {
  for (const attention_case& c : attention_cases()) check_case<T>(c, seed += 10);
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
