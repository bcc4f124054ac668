// unmask/cuda/attention_reference.hpp
//
// Fused scaled dot-product attention on the fp32 units, softmax(q k^T /
// sqrt(head_dim)) v: the reference the tensor-core kernel
// (flash_attention.hpp) is tested against, and the kernel that
// unmask/cuda/attention.hpp uses for fp32, for head dims the tensor-core
// kernel lacks and on GPUs older than sm_80. The GPU twin of
// unmask::cpu::attention with the same geometry (query row i of sequence b
// at absolute position q_offsets[b] + i, keys [0, kv_lengths[b]) of K/V slot
// kv_slots[b], the mask's key_end as the visible prefix, grouped query
// heads, padding rows and rows that see no key written as zeros). The
// score matrix never exists: each query row keeps an online softmax (running
// maximum m and sum l of e^(s - m), and the output accumulator, all three
// rescaled by e^(m_old - m_new) whenever the maximum grows; Milakov and
// Gimelshein 2018, "Online normalizer calculation for softmax"), folded over
// tiles of keys as in FlashAttention (Dao et al. 2022), and divides by l at
// the end. One 128-thread block (4 warps) serves one (sequence, head, tile of
// 16 query rows); each warp owns 4 of the rows. The block stages the rows'
// queries, then 32 keys and values at a time, in shared memory as fp32 (K
// rows padded to an odd stride so that lane j reading key j hits a distinct
// bank), walking keys up to the largest key_end of its rows (cub::BlockReduce),
// so each K/V row is read from global memory once per 16 query rows rather
// than once per row; the head-sharing blocks of grouped-query attention meet
// in L2.
// Per tile and row, lane j computes the score of key j, cub::WarpReduce gives
// the tile's maximum and sum of e^(s - m), and each lane accumulates the
// head dims d = lane, lane + 32, ... (head_dim <= 32 * Dims, Dims a template
// parameter: 1, 2, 4 or 8, so head_dim up to 256 and any value, 2, 24 or 40
// included) with the probabilities broadcast by shuffles. Arithmetic is fp32
// whatever T is (float, half or bfloat16); outputs are rounded once to T.
// Global reads move 16 bytes at a time when head_dim is a multiple of
// 16 / sizeof(T) and q, k, v are 16-byte aligned, one element otherwise.
// Shared memory is 4 * (16 * head_dim + 32 * (head_dim | 1) + 32 * head_dim)
// bytes: about 40 KiB at head_dim 128, 80 KiB at 256 (opted in above 46 KiB,
// i.e. head_dim > 146, which needs a GPU with that much per block: sm_80 or
// newer). A key count past kv_capacity is clamped to it (the CPU would read
// out of bounds). The row geometry and the online-softmax step are
// host/device functions, so the host tests replay the kernel's order of work
// against the CPU reference without a GPU.
#pragma once

#include <cub/block/block_reduce.cuh>
#include <cub/warp/warp_reduce.cuh>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "unmask/cuda/vector_io.hpp"
#include "unmask/model/attention_mask.hpp"

namespace unmask::cuda {

inline constexpr int attention_warps = 4;
inline constexpr int attention_threads = 32 * attention_warps;
inline constexpr int attention_rows_per_warp = 4;
inline constexpr int attention_query_tile = attention_warps * attention_rows_per_warp;  // query rows per block
inline constexpr int attention_key_tile = 32;                                             // one key per lane
inline constexpr std::int64_t attention_max_head_dim = 256;

// Where one (sequence b, head h, query row i) reads and writes, and which keys it sees.
struct attention_row {
  std::int64_t key_end;  // keys [0, key_end) are visible; <= 0: the row is written as zeros
  std::int64_t q_at;     // element offset of the row in q and out
  std::int64_t kv_at;    // element offset of key 0 of its K/V head; key j at kv_at + j * kv_heads * head_dim
};

// Element offset of key 0 of the K/V head that head h of sequence b reads
// (the same for every query row of the pair).
UNMASK_HOST_DEVICE std::int64_t attention_kv_at(const attention_shape& s, const attention_extents& e, std::int64_t b,
                                                std::int64_t h) {
  const std::int64_t slot = e.kv_slots ? e.kv_slots[b] : b;
  const std::int64_t kv_head = h / (s.heads / s.kv_heads);
  return (slot * s.kv_capacity * s.kv_heads + kv_head) * s.head_dim;
}

// The row's geometry as cpu::attention defines it. Extents pointers are read
// (device pointers in the kernel); the key count is clamped to kv_capacity
// so that a bad length cannot read past the slot.
UNMASK_HOST_DEVICE attention_row attention_row_of(const attention_shape& s, const attention_extents& e,
                                                  attention_mask mask, std::int64_t b, std::int64_t h,
                                                  std::int64_t i) {
  attention_row row{0, ((b * s.q_len + i) * s.heads + h) * s.head_dim, attention_kv_at(s, e, b, h)};
  const std::int64_t q_length = e.q_lengths ? e.q_lengths[b] : s.q_len;
  if (i >= q_length) return row;
  std::int64_t kv_length = e.kv_lengths ? e.kv_lengths[b] : s.kv_capacity;
  if (kv_length > s.kv_capacity) kv_length = s.kv_capacity;
  const std::int64_t position = (e.q_offsets ? e.q_offsets[b] : 0) + i;
  row.key_end = mask.key_end(position, kv_length, e.mask_origins ? e.mask_origins[b] : 0);
  return row;
}

// The running maximum and sum of one query row's online softmax, in base e
// (scores as they are) or base 2 (scores pre-multiplied by log2(e), which
// turns every exponential into one exp2: the tensor-core kernel's form).
template <bool Base2>
struct basic_online_softmax {
  float max = -INFINITY;
  float sum = 0.0f;

  // Raises the maximum to include a tile whose largest score is tile_max and
  // returns the factor e^(old max - new max) (2^ in base 2) by which the sum
  // (rescaled here) and the caller's accumulators must be multiplied. 1 when
  // the maximum stays, so an all -inf start never computes e^(-inf + inf).
  UNMASK_HOST_DEVICE float rescale(float tile_max) {
    const float m = tile_max > max ? tile_max : max;
    const float factor = m == max ? 1.0f : (Base2 ? exp2f(max - m) : expf(max - m));
    max = m;
    sum *= factor;
    return factor;
  }
  // Adds the tile's sum of e^(s - max), with max the value after rescale.
  UNMASK_HOST_DEVICE void add(float tile_sum) { sum += tile_sum; }
};
using online_softmax = basic_online_softmax<false>;

// K rows in shared memory are this many floats apart: odd, so the 32 lanes
// reading element d of keys 0..31 hit 32 different banks.
UNMASK_HOST_DEVICE std::int64_t attention_key_stride(std::int64_t head_dim) { return head_dim | 1; }

// Dynamic shared memory of one block: the query tile, a K tile, a V tile (fp32).
inline std::size_t attention_shared_bytes(std::int64_t head_dim) {
  const std::int64_t floats = attention_query_tile * head_dim +
                              attention_key_tile * (attention_key_stride(head_dim) + head_dim);
  return sizeof(float) * std::size_t(floats);
}

namespace detail {

struct attention_max {
  UNMASK_HOST_DEVICE float operator()(float a, float b) const { return b > a ? b : a; }
  UNMASK_HOST_DEVICE long long operator()(long long a, long long b) const { return b > a ? b : a; }
};

}  // namespace detail

// q (batch, q_len, heads, head_dim); k, v (slots, kv_capacity, kv_heads,
// head_dim); out (batch, q_len, heads, head_dim). Grid (query tiles, heads,
// batch); head_dim <= 32 * Dims; N elements per global load (1 or 16 bytes).
template <class T, int Dims, int N>
__global__ void __launch_bounds__(attention_threads)
    attention_kernel(const T* q, const T* k, const T* v, T* out, attention_shape s, attention_extents e,
                     attention_mask mask, float scale) {
  static_assert(is_element_v<T>, "element type must be float, unmask::half or unmask::bfloat16");
  static_assert(Dims >= 1 && 32 * Dims <= attention_max_head_dim, "head dims per lane");
  static_assert(N == 1 || N == vector_width<T>, "one element or one 16-byte vector of T per access");
  constexpr int R = attention_rows_per_warp;
  constexpr unsigned all_lanes = 0xffffffffu;
  using block_reduce = cub::BlockReduce<long long, attention_threads>;
  using warp_reduce = cub::WarpReduce<float>;
  __shared__ typename block_reduce::TempStorage block_storage;
  __shared__ typename warp_reduce::TempStorage warp_storage[attention_warps];
  __shared__ long long block_key_end;
  extern __shared__ float shared[];

  const int hd = int(s.head_dim);
  const int key_stride = int(attention_key_stride(hd));
  float* q_tile = shared;                                  // (query_tile, hd)
  float* k_tile = q_tile + attention_query_tile * hd;      // (key_tile, key_stride)
  float* v_tile = k_tile + attention_key_tile * key_stride;  // (key_tile, hd)

  const std::int64_t b = blockIdx.z, h = blockIdx.y;
  const std::int64_t first = std::int64_t(blockIdx.x) * attention_query_tile;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;

  // This warp's rows (every lane holds all R, identical across the warp).
  attention_row rows[R];
  long long warp_end = 0;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const std::int64_t i = first + warp * R + r;
    rows[r] = i < s.q_len ? attention_row_of(s, e, mask, b, h, i) : attention_row{0, 0, 0};
    if (rows[r].key_end > warp_end) warp_end = rows[r].key_end;
  }
  const long long end = block_reduce(block_storage).Reduce(warp_end, detail::attention_max{});
  if (threadIdx.x == 0) block_key_end = end;

  // The query tile; rows past q_len are zero-filled and never read.
  const std::int64_t kv_row_stride = s.kv_heads * s.head_dim;
  for (int at = int(threadIdx.x) * N; at < attention_query_tile * hd; at += attention_threads * N) {
    const int r = at / hd, d = at % hd;
    const std::int64_t i = first + r;
    float x[N] = {};
    if (i < s.q_len) load_floats<N>(q + ((b * s.q_len + i) * s.heads + h) * s.head_dim + d, x);
#pragma unroll
    for (int c = 0; c < N; ++c) q_tile[at + c] = x[c];
  }
  __syncthreads();
  const std::int64_t key_end = block_key_end;

  // Every row of the block reads the same slot and K/V head.
  const std::int64_t kv_at = attention_kv_at(s, e, b, h);

  float acc[R][Dims];
  online_softmax state[R];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int c = 0; c < Dims; ++c) acc[r][c] = 0.0f;

  for (std::int64_t t0 = 0; t0 < key_end; t0 += attention_key_tile) {
    const int count = int(key_end - t0 < attention_key_tile ? key_end - t0 : attention_key_tile);
    // Stage keys and values [t0, t0 + count).
    for (int at = int(threadIdx.x) * N; at < count * hd; at += attention_threads * N) {
      const int j = at / hd, d = at % hd;
      const std::int64_t g = kv_at + (t0 + j) * kv_row_stride + d;
      float kx[N], vx[N];
      load_floats<N>(k + g, kx);
      load_floats<N>(v + g, vx);
#pragma unroll
      for (int c = 0; c < N; ++c) {
        k_tile[j * key_stride + d + c] = kx[c];
        v_tile[j * hd + d + c] = vx[c];
      }
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (rows[r].key_end <= t0) continue;  // uniform across the warp
      const int valid = int(rows[r].key_end - t0 < count ? rows[r].key_end - t0 : count);
      float score = -INFINITY;
      if (lane < valid) {
        const float* qr = q_tile + (warp * R + r) * hd;
        const float* kr = k_tile + lane * key_stride;
        float dot = 0.0f;
        for (int d = 0; d < hd; ++d) dot += qr[d] * kr[d];
        score = dot * scale;
      }
      const float tile_max =
          __shfl_sync(all_lanes, warp_reduce(warp_storage[warp]).Reduce(score, detail::attention_max{}), 0);
      const float factor = state[r].rescale(tile_max);
      const float p = lane < valid ? expf(score - state[r].max) : 0.0f;
      __syncwarp();
      state[r].add(__shfl_sync(all_lanes, warp_reduce(warp_storage[warp]).Sum(p), 0));
      __syncwarp();
#pragma unroll
      for (int c = 0; c < Dims; ++c) acc[r][c] *= factor;
      for (int j = 0; j < valid; ++j) {
        const float pj = __shfl_sync(all_lanes, p, j);
#pragma unroll
        for (int c = 0; c < Dims; ++c) {
          const int d = lane + 32 * c;
          if (d < hd) acc[r][c] += pj * v_tile[j * hd + d];
        }
      }
    }
    __syncthreads();  // the tiles are restaged next
  }

#pragma unroll
  for (int r = 0; r < R; ++r) {
    const std::int64_t i = first + warp * R + r;
    if (i >= s.q_len) continue;
    const bool visible = rows[r].key_end > 0;
#pragma unroll
    for (int c = 0; c < Dims; ++c) {
      const int d = lane + 32 * c;
      if (d < hd) {
        const float y[1] = {visible ? acc[r][c] / state[r].sum : 0.0f};
        store_floats<1>(out + rows[r].q_at + d, y);
      }
    }
  }
}

namespace detail {

template <class T, int Dims, int N>
cudaError_t launch_attention(const T* q, const T* k, const T* v, T* out, const attention_shape& s,
                             const attention_extents& e, attention_mask mask, cudaStream_t stream) {
  const auto kernel = attention_kernel<T, Dims, N>;
  const std::size_t bytes = attention_shared_bytes(s.head_dim);
  if (bytes > 46 * 1024) {  // past the default 48 KB, static shared memory included
    const cudaError_t status =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
    if (status != cudaSuccess) return status;
  }
  const std::int64_t tiles = (s.q_len + attention_query_tile - 1) / attention_query_tile;
  const dim3 grid(unsigned(tiles), unsigned(s.heads), unsigned(s.batch));
  const float scale = 1.0f / std::sqrt(float(s.head_dim));
  kernel<<<grid, attention_threads, bytes, stream>>>(q, k, v, out, s, e, mask, scale);
  return launch_result();
}

template <class T, int Dims>
cudaError_t launch_attention(const T* q, const T* k, const T* v, T* out, const attention_shape& s,
                             const attention_extents& e, attention_mask mask, cudaStream_t stream) {
  constexpr int width = vector_width<T>;
  if (s.head_dim % width == 0 && is_aligned(q, 16) && is_aligned(k, 16) && is_aligned(v, 16))
    return launch_attention<T, Dims, width>(q, k, v, out, s, e, mask, stream);
  return launch_attention<T, Dims, 1>(q, k, v, out, s, e, mask, stream);
}

// The sizes the kernel accepts: grid y and z hold heads and batch, query
// tiles fit grid x, element offsets fit int64.
inline bool attention_sizes_ok(const attention_shape& s, attention_mask mask) {
  constexpr std::int64_t grid_yz = 65535, limit = std::int64_t(1) << 62;
  if (s.batch < 0 || s.batch > grid_yz || s.q_len < 0 || s.q_len > INT32_MAX) return false;
  if (s.kv_capacity < 1 || s.kv_capacity > INT32_MAX || s.heads < 1 || s.heads > grid_yz) return false;
  if (s.kv_heads < 1 || s.heads % s.kv_heads != 0) return false;
  if (s.head_dim < 1 || s.head_dim > attention_max_head_dim) return false;
  if (mask.kind == attention_kind::block_causal && mask.block_size <= 0) return false;
  if (s.batch * s.heads * s.head_dim > limit / (s.q_len > 0 ? s.q_len : 1)) return false;
  return true;
}

}  // namespace detail

// out = attention(q, k, v) as cpu::attention computes it, on the fp32 units; every extents
// pointer is a device pointer or null (the default). out must not overlap
// q, k or v. Returns cudaErrorInvalidValue, before any CUDA call, for batch
// outside [0, 65535], q_len outside [0, 2^31), kv_capacity outside [1, 2^31),
// heads outside [1, 65535], kv_heads < 1 or not dividing heads, head_dim
// outside [1, 256], a block-causal mask with block_size <= 0, or a null q, k,
// v or out; cudaSuccess when batch or q_len is 0 (nothing to do); else the
// error of the shared-memory opt-in or of the launch.
template <class T>
cudaError_t attention_reference(const T* q, const T* k, const T* v, T* out, const attention_shape& s,
                                const attention_extents& e, attention_mask mask, cudaStream_t stream) {
  static_assert(is_element_v<T>, "element type must be float, unmask::half or unmask::bfloat16");
  if (!detail::attention_sizes_ok(s, mask)) return cudaErrorInvalidValue;
  if (s.batch == 0 || s.q_len == 0) return cudaSuccess;
  if (q == nullptr || k == nullptr || v == nullptr || out == nullptr) return cudaErrorInvalidValue;
  if (s.head_dim <= 32) return detail::launch_attention<T, 1>(q, k, v, out, s, e, mask, stream);
  if (s.head_dim <= 64) return detail::launch_attention<T, 2>(q, k, v, out, s, e, mask, stream);
  if (s.head_dim <= 128) return detail::launch_attention<T, 4>(q, k, v, out, s, e, mask, stream);
  return detail::launch_attention<T, 8>(q, k, v, out, s, e, mask, stream);
}

}  // namespace unmask::cuda
