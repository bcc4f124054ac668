// unmask/cuda/flash_attention.hpp
//
// Attention on tensor cores, FlashAttention-2 style (Dao 2023,
// "FlashAttention-2: Faster Attention with Better Parallelism and Work
// Partitioning", algorithm 1), for half and bfloat16 with fp32 accumulation,
// head_dim 32, 64, 96 or 128, and the geometry of attention_reference.hpp
// (every mask, grouped-query heads, query rows at q_offsets against
// kv_lengths keys of slot kv_slots, per-sequence q_lengths; padding rows and
// rows that see no key written as zeros). Each warp owns 16 query rows, whose
// Q fragments it keeps in registers; a block of `Warps` warps walks the keys
// its rows can see, KeyTile at a time, staged in shared memory by cp.async in
// two alternating buffers (the next tile loads while this one is used). Per
// tile a warp computes S = Q K^T with mma.sync m16n8k16 (K read by ldmatrix),
// masks and scales S in its C registers (keys at or past a row's key_end are
// -inf), updates each row's running maximum and sum (online softmax in base
// 2: scores are pre-multiplied by log2(e) / sqrt(head_dim)), rescales its
// output accumulators, rounds P to T in place (the C layout of two 8-key
// tiles is the A layout of one 16-key chunk) and adds P V (V read by
// ldmatrix.trans). Rows that sum over their quad of lanes are reduced with
// two shuffles. P is rounded to T before P V, as in FlashAttention; this
// and the 16-bit products make results differ from the fp32 reference
// kernel by a few units of T's last place, not bit for bit.
// Few queries (q_len <= 64: autoregressive decoding, block steps against a
// cache) run one warp per block with 32-key tiles and split the keys
// (flash-decoding, Dao et al. 2023): split s of a block takes keys
// [s * 256, (s + 1) * 256), writes its unnormalised output with its maximum
// and sum to a workspace, and flash_combine_kernel merges the splits
// (out = sum_s 2^(m_s - M) o_s / sum_s 2^(m_s - M) l_s). The split count
// depends only on kv_capacity, so a sequence's result does not depend on the
// batch it runs in. Without a workspace (or one too small) the splits are 1.
// Lane-level steps (fragment addressing, masking, exponentiation, packing,
// the split ranges) are host/device functions, so tests/cuda/test_flash_attention.cu
// runs a block lane by lane on the host with an emulated warp.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "unmask/cuda/attention_reference.hpp"
#include "unmask/cuda/mma.hpp"
#include "unmask/cuda/vector_io.hpp"
#include "unmask/model/attention_mask.hpp"

namespace unmask::cuda {

inline constexpr std::int64_t flash_split_keys = 256;  // keys per split on the few-query path
inline constexpr std::int64_t flash_few_queries = 64;  // q_len up to this: the few-query path

// Head dims with a tensor-core kernel (others use attention_reference.hpp's).
UNMASK_HOST_DEVICE bool flash_head_dim_supported(std::int64_t head_dim) {
  return head_dim == 32 || head_dim == 64 || head_dim == 96 || head_dim == 128;
}

// Shared-memory row stride of a staged K or V row, in elements: 8 more than
// head_dim, so that the 8 rows one ldmatrix phase reads start 16 bytes apart
// modulo 128 and hit distinct banks.
UNMASK_HOST_DEVICE int flash_row_stride(int head_dim) { return head_dim + 8; }

// Two stages of a K tile and a V tile, 16-bit elements.
inline std::size_t flash_shared_bytes(int head_dim, int key_tile) {
  return std::size_t(2) * 2 * std::size_t(key_tile) * std::size_t(flash_row_stride(head_dim)) * 2;
}

// Key splits of a few-query call (1 otherwise): by kv_capacity alone.
inline std::int64_t flash_splits(const attention_shape& s) {
  if (s.q_len > flash_few_queries) return 1;
  return (s.kv_capacity + flash_split_keys - 1) / flash_split_keys;
}

// Bytes of workspace the split path needs: per (sequence, head, split, query
// row) head_dim output floats and a (maximum, sum) pair. 0: no split.
inline std::size_t flash_workspace_bytes(const attention_shape& s) {
  const std::int64_t splits = flash_splits(s);
  if (splits <= 1) return 0;
  const std::int64_t rows = s.batch * s.heads * splits * s.q_len;
  return std::size_t(rows) * std::size_t(s.head_dim + 2) * sizeof(float);
}

// The keys a split sees of a block whose rows see [0, block_end).
struct key_range {
  std::int64_t begin;
  std::int64_t end;  // <= begin: empty
};
UNMASK_HOST_DEVICE key_range flash_split_range(std::int64_t split, std::int64_t split_keys, std::int64_t block_end) {
  const std::int64_t begin = split * split_keys;
  const std::int64_t end = begin + split_keys < block_end ? begin + split_keys : block_end;
  return {begin, end};
}

// Staging: copy `index` (one 16-byte piece) of a tile of key_tile rows of
// head_dim elements: its row and the element offset of its first element.
struct stage_piece {
  int row;
  int col;
};
UNMASK_HOST_DEVICE stage_piece flash_stage_piece(int index, int head_dim) {
  const int per_row = head_dim / 8;
  return {index / per_row, 8 * (index % per_row)};
}

// ldmatrix x4 sources (row in the tile, element column) for K, giving the B
// fragments of 8-key tiles 2 * pair and 2 * pair + 1 over head dims
// [16 * chunk, 16 * chunk + 16): registers 0, 1 are tile 2 * pair's b[0], b[1],
// registers 2, 3 tile 2 * pair + 1's.
UNMASK_HOST_DEVICE stage_piece flash_k_source(int lane, int pair, int chunk) {
  const mma::ldmatrix_source m = mma::ldmatrix_source_of(lane);
  return {pair * 16 + 8 * (m.matrix >> 1) + m.row, chunk * 16 + 8 * (m.matrix & 1)};
}
// ldmatrix x4 .trans sources for V, giving the B fragments of 8-dim tiles
// 2 * pair and 2 * pair + 1 over keys [16 * chunk, 16 * chunk + 16).
UNMASK_HOST_DEVICE stage_piece flash_v_source(int lane, int pair, int chunk) {
  const mma::ldmatrix_source m = mma::ldmatrix_source_of(lane);
  return {chunk * 16 + 8 * (m.matrix & 1) + m.row, pair * 16 + 8 * (m.matrix >> 1)};
}

// A row's online softmax in base 2 (attention_reference.hpp); the sum a
// lane keeps is its share, the quad's shares are added at the end.
using online_softmax_base2 = basic_online_softmax<true>;

// Scales this lane's scores of an S tile (KeyTile / 8 C fragments) by
// scale_log2 and masks keys at or past each row's end (row_end[0] for row
// group g, [1] for g + 8; keys counted from t0), and returns each row's
// largest score in tile_max (this lane's share).
template <int Tiles>
UNMASK_HOST_DEVICE void flash_mask_scores(float (&s)[Tiles][4], int lane, std::int64_t t0,
                                          const std::int64_t (&row_end)[2], float scale_log2,
                                          float (&tile_max)[2]) {
  tile_max[0] = tile_max[1] = -INFINITY;
  UNMASK_UNROLL
  for (int n = 0; n < Tiles; ++n)
    UNMASK_UNROLL
    for (int e = 0; e < 4; ++e) {
      const int r = e >> 1;
      const std::int64_t key = t0 + 8 * n + mma::c_element(lane, e).col;
      const float x = key < row_end[r] ? s[n][e] * scale_log2 : -INFINITY;
      s[n][e] = x;
      tile_max[r] = x > tile_max[r] ? x : tile_max[r];
    }
}

// Scores -> probabilities 2^(s - max) in place (0 for masked keys, also when
// the row's maximum is still -inf), added to each row's running sum.
template <int Tiles>
UNMASK_HOST_DEVICE void flash_exponentiate(float (&s)[Tiles][4], online_softmax_base2 (&rows)[2]) {
  UNMASK_UNROLL
  for (int n = 0; n < Tiles; ++n)
    UNMASK_UNROLL
    for (int e = 0; e < 4; ++e) {
      const int r = e >> 1;
      const float p = s[n][e] == -INFINITY ? 0.0f : exp2f(s[n][e] - rows[r].max);
      s[n][e] = p;
      rows[r].sum += p;
    }
}

// Probabilities of 8-key tiles 2c and 2c + 1 as the A fragment of 16-key chunk c.
template <class T, int Tiles>
UNMASK_HOST_DEVICE void flash_pack_probabilities(const float (&p)[Tiles][4], std::uint32_t (&a)[Tiles / 2][4]) {
  static_assert(Tiles % 2 == 0, "key tiles come in pairs of 8");
  UNMASK_UNROLL
  for (int c = 0; c < Tiles / 2; ++c) {
    a[c][0] = mma::pack2<T>(p[2 * c][0], p[2 * c][1]);
    a[c][1] = mma::pack2<T>(p[2 * c][2], p[2 * c][3]);
    a[c][2] = mma::pack2<T>(p[2 * c + 1][0], p[2 * c + 1][1]);
    a[c][3] = mma::pack2<T>(p[2 * c + 1][2], p[2 * c + 1][3]);
  }
}

// Multiplies this lane's output accumulators by each row's factor.
template <int Tiles>
UNMASK_HOST_DEVICE void flash_rescale_output(float (&o)[Tiles][4], const float (&factor)[2]) {
  UNMASK_UNROLL
  for (int n = 0; n < Tiles; ++n)
    UNMASK_UNROLL
    for (int e = 0; e < 4; ++e) o[n][e] *= factor[e >> 1];
}

// Element offset in q / out of row i of (b, h); rows past q_len do not exist.
UNMASK_HOST_DEVICE std::int64_t flash_row_at(const attention_shape& s, std::int64_t b, std::int64_t h,
                                             std::int64_t i) {
  return ((b * s.q_len + i) * s.heads + h) * s.head_dim;
}

// Where split sp of row i of (b, h) keeps its partial result: output floats
// at o_at, (maximum, sum) at ml_at.
struct flash_partial_at {
  std::int64_t o_at;
  std::int64_t ml_at;
};
UNMASK_HOST_DEVICE flash_partial_at flash_partial_of(const attention_shape& s, std::int64_t splits, std::int64_t b,
                                                     std::int64_t h, std::int64_t sp, std::int64_t i) {
  const std::int64_t row = ((b * s.heads + h) * splits + sp) * s.q_len + i;
  const std::int64_t rows = s.batch * s.heads * splits * s.q_len;
  return {row * s.head_dim, rows * s.head_dim + 2 * row};
}

namespace detail {

UNMASK_DEVICE float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
UNMASK_DEVICE float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

}  // namespace detail

// q (batch, q_len, heads, D); k, v (slots, kv_capacity, kv_heads, D); out as
// q, or (splits > 1) partial results in `partial` (flash_partial_of). Grid
// (query tiles * splits, heads, batch), 32 * Warps threads, dynamic shared
// memory flash_shared_bytes(D, KeyTile).
template <class T, int D, int Warps, int KeyTile>
__global__ void __launch_bounds__(32 * Warps)
    flash_attention_kernel(const T* q, const T* k, const T* v, T* out, float* partial, attention_shape s,
                           attention_extents e, attention_mask mask, float scale_log2, int splits) {
  static_assert(mma::is_tile_element_v<T>, "tensor-core attention takes half or bfloat16");
  static_assert(D % 16 == 0 && D <= 128, "head_dim a multiple of 16, at most 128");
  static_assert(KeyTile == 32 || KeyTile == 64, "key tiles of 32 or 64");
  constexpr int stride = D + 8;  // flash_row_stride(D)
  constexpr int score_tiles = KeyTile / 8, out_tiles = D / 8, q_chunks = D / 16;
  constexpr int rows_per_block = 16 * Warps, threads = 32 * Warps;
  constexpr int pieces = KeyTile * D / 8;  // 16-byte pieces per tile
  extern __shared__ __align__(16) unsigned char flash_shared[];
  T* const k_stage = reinterpret_cast<T*>(flash_shared);       // (2, KeyTile, stride)
  T* const v_stage = k_stage + 2 * KeyTile * stride;           // (2, KeyTile, stride)
  __shared__ long long warp_ends[Warps];

  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const std::int64_t b = blockIdx.z, h = blockIdx.y;
  const std::int64_t tile = blockIdx.x / splits, split = blockIdx.x % splits;
  const std::int64_t row0 = tile * rows_per_block + 16 * warp;  // this warp's first row
  const int g = mma::group_of(lane), t = mma::thread_of(lane);

  // This lane's two rows (g and g + 8 of the warp) and the block's key end.
  std::int64_t row_end[2];
  for (int r = 0; r < 2; ++r) {
    const std::int64_t i = row0 + g + 8 * r;
    row_end[r] = i < s.q_len ? attention_row_of(s, e, mask, b, h, i).key_end : 0;
  }
  long long end = row_end[0] > row_end[1] ? row_end[0] : row_end[1];
  for (int offset = 16; offset > 0; offset >>= 1) {
    const long long other = __shfl_xor_sync(0xffffffffu, end, offset);
    end = other > end ? other : end;
  }
  if (lane == 0) warp_ends[warp] = end;
  __syncthreads();
  long long block_end = 0;
  for (int w = 0; w < Warps; ++w) block_end = warp_ends[w] > block_end ? warp_ends[w] : block_end;
  const key_range range = flash_split_range(split, splits > 1 ? flash_split_keys : block_end, block_end);
  // Keys this block may score per row: staged keys past range.end are zeros, not keys.
  std::int64_t limit[2];
  for (int r = 0; r < 2; ++r) limit[r] = row_end[r] < range.end ? row_end[r] : range.end;

  // Q fragments (rows past q_len are zeros).
  std::uint32_t qa[q_chunks][4];
  for (int c = 0; c < q_chunks; ++c)
    for (int reg = 0; reg < 4; ++reg) {
      const mma::element_at at = mma::a_element(lane, 2 * reg);
      const std::int64_t i = row0 + at.row;
      qa[c][reg] = i < s.q_len ? *reinterpret_cast<const std::uint32_t*>(q + flash_row_at(s, b, h, i) + 16 * c + at.col)
                               : 0u;
    }

  const std::int64_t kv_at = attention_kv_at(s, e, b, h);
  const std::int64_t kv_row_stride = s.kv_heads * D;
  auto stage = [&](std::int64_t t0, int buffer) {
    for (int index = int(threadIdx.x); index < pieces; index += threads) {
      const stage_piece p = flash_stage_piece(index, D);
      const std::int64_t key = t0 + p.row;
      const bool valid = key < range.end;
      const std::int64_t from = kv_at + (valid ? key : 0) * kv_row_stride + p.col;
      const int to = (buffer * KeyTile + p.row) * stride + p.col;
      mma::copy_async_16(k_stage + to, k + from, valid);
      mma::copy_async_16(v_stage + to, v + from, valid);
    }
    mma::copy_async_commit();
  };

  float o[out_tiles][4];
  for (int n = 0; n < out_tiles; ++n)
    for (int c = 0; c < 4; ++c) o[n][c] = 0.0f;
  online_softmax_base2 rows[2];

  const std::int64_t tiles = range.end > range.begin ? (range.end - range.begin + KeyTile - 1) / KeyTile : 0;
  if (tiles > 0) stage(range.begin, 0);
  for (std::int64_t n = 0; n < tiles; ++n) {
    const std::int64_t t0 = range.begin + n * KeyTile;
    const int buffer = int(n & 1);
    if (n + 1 < tiles) {
      stage(t0 + KeyTile, buffer ^ 1);
      mma::copy_async_wait<1>();
    } else {
      mma::copy_async_wait<0>();
    }
    __syncthreads();
    if (__any_sync(0xffffffffu, row_end[0] > t0 || row_end[1] > t0)) {
      const T* const kt = k_stage + buffer * KeyTile * stride;
      const T* const vt = v_stage + buffer * KeyTile * stride;
      float sc[score_tiles][4];
#pragma unroll
      for (int m = 0; m < score_tiles; ++m)
#pragma unroll
        for (int c = 0; c < 4; ++c) sc[m][c] = 0.0f;
#pragma unroll
      for (int c = 0; c < q_chunks; ++c)
#pragma unroll
        for (int pair = 0; pair < score_tiles / 2; ++pair) {
          const stage_piece src = flash_k_source(lane, pair, c);
          std::uint32_t kb[4];
          mma::ldmatrix_x4<false>(kb, kt + src.row * stride + src.col);
          const std::uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
          mma::mma_16x8x16<T>(sc[2 * pair], qa[c], b0);
          mma::mma_16x8x16<T>(sc[2 * pair + 1], qa[c], b1);
        }
      float tile_max[2];
      flash_mask_scores(sc, lane, t0, limit, scale_log2, tile_max);
      float factor[2];
      for (int r = 0; r < 2; ++r) factor[r] = rows[r].rescale(detail::quad_max(tile_max[r]));
      flash_exponentiate(sc, rows);
      flash_rescale_output(o, factor);
      std::uint32_t pa[score_tiles / 2][4];
      flash_pack_probabilities<T>(sc, pa);
#pragma unroll
      for (int c = 0; c < score_tiles / 2; ++c)
#pragma unroll
        for (int pair = 0; pair < out_tiles / 2; ++pair) {
          const stage_piece src = flash_v_source(lane, pair, c);
          std::uint32_t vb[4];
          mma::ldmatrix_x4<true>(vb, vt + src.row * stride + src.col);
          const std::uint32_t b0[2] = {vb[0], vb[1]}, b1[2] = {vb[2], vb[3]};
          mma::mma_16x8x16<T>(o[2 * pair], pa[c], b0);
          mma::mma_16x8x16<T>(o[2 * pair + 1], pa[c], b1);
        }
    }
    __syncthreads();  // the buffer is restaged two tiles on
  }

  float sum[2];
  for (int r = 0; r < 2; ++r) sum[r] = detail::quad_sum(rows[r].sum);
  for (int r = 0; r < 2; ++r) {
    const std::int64_t i = row0 + g + 8 * r;
    if (i >= s.q_len) continue;
    if (splits > 1) {
      const flash_partial_at at = flash_partial_of(s, splits, b, h, split, i);
      for (int n = 0; n < out_tiles; ++n) {
        partial[at.o_at + 8 * n + 2 * t] = o[n][2 * r];
        partial[at.o_at + 8 * n + 2 * t + 1] = o[n][2 * r + 1];
      }
      if (t == 0) {
        partial[at.ml_at] = rows[r].max;
        partial[at.ml_at + 1] = sum[r];
      }
    } else {
      const float inverse = sum[r] > 0.0f ? 1.0f / sum[r] : 0.0f;
      T* const y = out + flash_row_at(s, b, h, i);
      for (int n = 0; n < out_tiles; ++n)
        *reinterpret_cast<std::uint32_t*>(y + 8 * n + 2 * t) =
            mma::pack2<T>(o[n][2 * r] * inverse, o[n][2 * r + 1] * inverse);
    }
  }
}

// Head dim d of row i of (b, h) merged from its splits' partial results:
// sum_s 2^(m_s - M) o_s / sum_s 2^(m_s - M) l_s with M the largest m_s;
// 0 when no split saw a key (every m_s is -inf).
UNMASK_HOST_DEVICE float flash_combine(const float* partial, const attention_shape& s, std::int64_t splits,
                                       std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t d) {
  float largest = -INFINITY;
  for (std::int64_t sp = 0; sp < splits; ++sp) {
    const float m = partial[flash_partial_of(s, splits, b, h, sp, i).ml_at];
    largest = m > largest ? m : largest;
  }
  if (largest == -INFINITY) return 0.0f;
  float numerator = 0.0f, denominator = 0.0f;
  for (std::int64_t sp = 0; sp < splits; ++sp) {
    const flash_partial_at at = flash_partial_of(s, splits, b, h, sp, i);
    const float m = partial[at.ml_at];
    if (m == -INFINITY) continue;
    const float w = exp2f(m - largest);
    numerator += w * partial[at.o_at + d];
    denominator += w * partial[at.ml_at + 1];
  }
  return denominator > 0.0f ? numerator / denominator : 0.0f;
}

// One block per (row i, head h, sequence b); thread d writes head dim d.
template <class T>
__global__ void flash_combine_kernel(const float* partial, T* out, attention_shape s, int splits) {
  const std::int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  for (int d = int(threadIdx.x); d < s.head_dim; d += int(blockDim.x)) {
    const float y[1] = {flash_combine(partial, s, splits, b, h, i, d)};
    store_floats<1>(out + flash_row_at(s, b, h, i) + d, y);
  }
}

namespace detail {

template <class T, int D, int Warps, int KeyTile>
cudaError_t launch_flash_attention(const T* q, const T* k, const T* v, T* out, float* partial,
                                   const attention_shape& s, const attention_extents& e, attention_mask mask,
                                   std::int64_t splits, cudaStream_t stream) {
  const auto kernel = flash_attention_kernel<T, D, Warps, KeyTile>;
  const std::size_t bytes = flash_shared_bytes(D, KeyTile);
  if (bytes > 46 * 1024) {
    const cudaError_t status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
    if (status != cudaSuccess) return status;
  }
  const std::int64_t tiles = (s.q_len + 16 * Warps - 1) / (16 * Warps);
  const dim3 grid(unsigned(tiles * splits), unsigned(s.heads), unsigned(s.batch));
  const float scale_log2 = float(1.4426950408889634 / std::sqrt(double(D)));
  kernel<<<grid, 32 * Warps, bytes, stream>>>(q, k, v, out, partial, s, e, mask, scale_log2, int(splits));
  cudaError_t status = launch_result();
  if (status != cudaSuccess || splits <= 1) return status;
  flash_combine_kernel<T><<<dim3(unsigned(s.q_len), unsigned(s.heads), unsigned(s.batch)), 128, 0, stream>>>(
      partial, out, s, int(splits));
  return launch_result();
}

template <class T, int D>
cudaError_t launch_flash_attention(const T* q, const T* k, const T* v, T* out, float* partial,
                                   const attention_shape& s, const attention_extents& e, attention_mask mask,
                                   std::int64_t splits, cudaStream_t stream) {
  if (s.q_len <= flash_few_queries)
    return launch_flash_attention<T, D, 1, 32>(q, k, v, out, partial, s, e, mask, splits, stream);
  return launch_flash_attention<T, D, 4, 64>(q, k, v, out, partial, s, e, mask, 1, stream);
}

}  // namespace detail

// True when flash_attention takes this call: T half or bfloat16, head_dim
// 32, 64, 96 or 128, q, k, v and out 16-byte aligned, the current device of
// compute capability 8.0 or newer.
template <class T>
bool flash_attention_applies(const T* q, const T* k, const T* v, const T* out, const attention_shape& s) {
  if constexpr (!mma::is_tile_element_v<T>) {
    return false;
  } else {
    if (!flash_head_dim_supported(s.head_dim)) return false;
    if (!is_aligned(q, 16) || !is_aligned(k, 16) || !is_aligned(v, 16) || !is_aligned(out, 16)) return false;
    int device = 0, major = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return major >= 8;
  }
}

namespace detail {

// The launch for checked arguments that flash_attention_applies takes: the
// key splits where the workspace holds them, the kernel for the head dim.
template <class T>
cudaError_t run_flash_attention(const T* q, const T* k, const T* v, T* out, const attention_shape& s,
                                const attention_extents& e, attention_mask mask, void* workspace,
                                std::size_t workspace_bytes, cudaStream_t stream) {
  const std::size_t needed = flash_workspace_bytes(s);
  const bool split =
      needed > 0 && workspace != nullptr && workspace_bytes >= needed && is_aligned(workspace, sizeof(float));
  const std::int64_t splits = split ? flash_splits(s) : 1;
  float* partial = split ? static_cast<float*>(workspace) : nullptr;
  switch (s.head_dim) {
    case 32: return launch_flash_attention<T, 32>(q, k, v, out, partial, s, e, mask, splits, stream);
    case 64: return launch_flash_attention<T, 64>(q, k, v, out, partial, s, e, mask, splits, stream);
    case 96: return launch_flash_attention<T, 96>(q, k, v, out, partial, s, e, mask, splits, stream);
    default: return launch_flash_attention<T, 128>(q, k, v, out, partial, s, e, mask, splits, stream);
  }
}

}  // namespace detail

// out = attention(q, k, v) on tensor cores, with attention()'s arguments and
// checks; `workspace` (device memory of workspace_bytes, may be null) enables
// the key splits of the few-query path when it holds
// flash_workspace_bytes(s). cudaErrorInvalidValue also when
// flash_attention_applies is false.
template <class T>
cudaError_t flash_attention(const T* q, const T* k, const T* v, T* out, const attention_shape& s,
                            const attention_extents& e, attention_mask mask, void* workspace,
                            std::size_t workspace_bytes, cudaStream_t stream) {
  if (!detail::attention_sizes_ok(s, mask)) return cudaErrorInvalidValue;
  if (s.batch == 0 || s.q_len == 0) return cudaSuccess;
  if (q == nullptr || k == nullptr || v == nullptr || out == nullptr) return cudaErrorInvalidValue;
  if constexpr (!mma::is_tile_element_v<T>) {
    return cudaErrorInvalidValue;
  } else {
    if (!flash_attention_applies(q, k, v, out, s)) return cudaErrorInvalidValue;
    return detail::run_flash_attention(q, k, v, out, s, e, mask, workspace, workspace_bytes, stream);
  }
}

}  // namespace unmask::cuda
