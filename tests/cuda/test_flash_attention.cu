// Tensor-core attention (unmask/cuda/flash_attention.hpp, chosen by
// unmask/cuda/attention.hpp) against unmask::cpu::attention and against the
// fp32-unit kernel (attention_reference.hpp), on the cases of
// tests/cuda/attention_cases.hpp.
//
// Host tests, which run everywhere: the fragment layouts of unmask/cuda/mma.hpp
// equal the PTX tables (tests/cuda/mma_emulation.hpp, written from the ISA
// independently); an emulated mma over fragments packed by the header's
// functions multiplies; the ldmatrix sources the kernel gives for K and V
// produce exactly the B fragments the products need; the probabilities'
// C fragments are the next product's A fragments; split ranges, split counts
// and workspace sizes; and the whole kernel, replayed block by block and lane
// by lane with an emulated warp (the header's lane-level functions, emulated
// ldmatrix, mma and quad shuffles, staging as cp.async would fill it, both
// block shapes, with and without key splits and the combine step), matches
// the CPU on every case it takes, in half and bfloat16.
//
// Device tests (skipped without a GPU): attention() (tensor cores where they
// apply, with a workspace so that few-query calls split), flash_attention
// without a workspace, and the fp32-unit kernel, each against the CPU, in
// half and bfloat16; attention() picks the tensor-core kernel where the
// header says it applies.
//
// Tolerance of the tensor-core kernel, per element: P is rounded to T before
// P V, so an output moves by at most half a unit of T per probability
// weighted by |v|, i.e. u/2 * sum_j p_j |v_jd| / sum_j p_j, and the result is
// rounded once more (u/2 * |out|); the tests allow u * (that weighted mean +
// |out|) + 1e-6, with u the rounding unit of T (2^-7 bf16, 2^-10 half),
// computed in double from the same inputs. A wrong fragment layout or tile
// index moves outputs by the size of the values themselves.
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
#include "cuda/mma_emulation.hpp"
#include "unmask/cpu/attention.hpp"
#include "unmask/cuda/attention.hpp"
#include "unmask/cuda/flash_attention.hpp"
#include "unmask/cuda/mma.hpp"

namespace unmask {
namespace {

using namespace unmask::test;

template <class T>
T bits_of(std::uint16_t b) {
  T x;
  x.bits = b;
  return x;
}

// ---- fragment layouts ------------------------------------------------------------

TEST(CudaMmaHost, FragmentLayoutsAreThePtxTables) {
  for (int lane = 0; lane < 32; ++lane) {
    for (int e = 0; e < 8; ++e) {
      EXPECT_EQ(cuda::mma::a_element(lane, e).row, warp::mma_a(lane, e).row) << lane << " " << e;
      EXPECT_EQ(cuda::mma::a_element(lane, e).col, warp::mma_a(lane, e).col) << lane << " " << e;
    }
    for (int e = 0; e < 4; ++e) {
      EXPECT_EQ(cuda::mma::b_element(lane, e).row, warp::mma_b(lane, e).row) << lane << " " << e;
      EXPECT_EQ(cuda::mma::b_element(lane, e).col, warp::mma_b(lane, e).col) << lane << " " << e;
      EXPECT_EQ(cuda::mma::c_element(lane, e).row, warp::mma_c(lane, e).row) << lane << " " << e;
      EXPECT_EQ(cuda::mma::c_element(lane, e).col, warp::mma_c(lane, e).col) << lane << " " << e;
    }
  }
  // Each layout covers its matrix once.
  int a[16][16] = {}, b[16][8] = {}, c[16][8] = {};
  for (int lane = 0; lane < 32; ++lane) {
    for (int e = 0; e < 8; ++e) ++a[cuda::mma::a_element(lane, e).row][cuda::mma::a_element(lane, e).col];
    for (int e = 0; e < 4; ++e) ++b[cuda::mma::b_element(lane, e).row][cuda::mma::b_element(lane, e).col];
    for (int e = 0; e < 4; ++e) ++c[cuda::mma::c_element(lane, e).row][cuda::mma::c_element(lane, e).col];
  }
  for (int r = 0; r < 16; ++r)
    for (int col = 0; col < 16; ++col) {
      EXPECT_EQ(a[r][col], 1);
      if (col < 8) EXPECT_EQ(b[r][col], 1);
      if (col < 8) EXPECT_EQ(c[r][col], 1);
    }
}

TEST(CudaMmaHost, ScoreFragmentsOfTwoKeyTilesAreTheProbabilityFragment) {
  // flash_pack_probabilities puts C elements (tile 2c + e / 4 ... ) where A expects them:
  // A element e of a lane is C element (e % 4) of tile e / 4 of the same lane.
  for (int lane = 0; lane < 32; ++lane)
    for (int e = 0; e < 8; ++e) {
      const cuda::mma::element_at want = cuda::mma::a_element(lane, e);
      const cuda::mma::element_at from = cuda::mma::c_element(lane, e % 4);
      EXPECT_EQ(from.row, want.row);
      EXPECT_EQ(from.col + 8 * (e / 4), want.col);
    }
  float p[2][4];
  for (int t = 0; t < 2; ++t)
    for (int e = 0; e < 4; ++e) p[t][e] = 0.25f * float(4 * t + e + 1);  // exact in both types
  std::uint32_t a[1][4];
  cuda::flash_pack_probabilities<bfloat16>(p, a);
  for (int e = 0; e < 8; ++e) EXPECT_EQ(warp::element<bfloat16>(a[0][e / 2], e), p[e / 4][e % 4]) << e;
}

template <class T>
void check_emulated_mma(std::uint32_t seed) {
  const std::vector<T> A = random_elements<T>(16 * 16, seed, 1.0f), B = random_elements<T>(16 * 8, seed + 1, 1.0f);
  std::uint32_t a[32][4], b[32][2];
  float c[32][4] = {};
  for (int lane = 0; lane < 32; ++lane) {
    for (int reg = 0; reg < 4; ++reg) {
      const auto lo = cuda::mma::a_element(lane, 2 * reg), hi = cuda::mma::a_element(lane, 2 * reg + 1);
      a[lane][reg] = cuda::mma::pack2<T>(to_float(A[std::size_t(lo.row * 16 + lo.col)]),
                                         to_float(A[std::size_t(hi.row * 16 + hi.col)]));
    }
    for (int reg = 0; reg < 2; ++reg) {
      const auto lo = cuda::mma::b_element(lane, 2 * reg), hi = cuda::mma::b_element(lane, 2 * reg + 1);
      b[lane][reg] = cuda::mma::pack2<T>(to_float(B[std::size_t(lo.row * 8 + lo.col)]),
                                         to_float(B[std::size_t(hi.row * 8 + hi.col)]));
    }
  }
  warp::mma_16x8x16<T>(c, a, b);
  for (int lane = 0; lane < 32; ++lane)
    for (int e = 0; e < 4; ++e) {
      const auto at = cuda::mma::c_element(lane, e);
      double want = 0;
      for (int k = 0; k < 16; ++k)
        want += double(to_float(A[std::size_t(at.row * 16 + k)])) * double(to_float(B[std::size_t(k * 8 + at.col)]));
      EXPECT_NEAR(c[lane][e], want, 1e-5 * (1 + std::fabs(want))) << lane << " " << e;
    }
}

TEST(CudaMmaHost, EmulatedMmaOverPackedFragmentsMultiplies) {
  check_emulated_mma<bfloat16>(11);
  check_emulated_mma<half>(12);
}

// The K and V sources the kernel gives ldmatrix yield the B fragments of
// S = Q K^T (B(k = head dim, n = key) = K[key][dim]) and of O = P V
// (B(k = key, n = head dim) = V[key][dim]).
TEST(CudaFlashAttentionHost, LdmatrixSourcesGiveTheProductsFragments) {
  constexpr int D = 64, keys = 32, stride = D + 8;
  ASSERT_EQ(cuda::flash_row_stride(D), stride);
  std::vector<bfloat16> tile(std::size_t(keys * stride));
  for (int j = 0; j < keys; ++j)
    for (int d = 0; d < stride; ++d) tile[std::size_t(j * stride + d)] = bits_of<bfloat16>(std::uint16_t(j * 256 + d));
  auto value = [&](int key, int dim) { return std::uint16_t(key * 256 + dim); };
  for (int trans = 0; trans < 2; ++trans)
    for (int pair = 0; pair < (trans ? D : keys) / 16; ++pair)
      for (int chunk = 0; chunk < (trans ? keys : D) / 16; ++chunk) {
        const bfloat16* rows[32];
        for (int lane = 0; lane < 32; ++lane) {
          const cuda::stage_piece src =
              trans ? cuda::flash_v_source(lane, pair, chunk) : cuda::flash_k_source(lane, pair, chunk);
          ASSERT_EQ(src.col % 8, 0);  // 16-byte aligned rows
          rows[lane] = tile.data() + src.row * stride + src.col;
        }
        std::uint32_t r[32][4];
        warp::ldmatrix_x4(rows, trans != 0, r);
        for (int lane = 0; lane < 32; ++lane)
          for (int half_tile = 0; half_tile < 2; ++half_tile)  // registers 0-1: tile 2 * pair, 2-3: tile 2 * pair + 1
            for (int e = 0; e < 4; ++e) {
              const cuda::mma::element_at at = cuda::mma::b_element(lane, e);
              const int n = 8 * (2 * pair + half_tile) + at.col, k = 16 * chunk + at.row;
              const std::uint16_t want = trans ? value(k, n) : value(n, k);
              const std::uint32_t reg = r[lane][2 * half_tile + e / 2];
              EXPECT_EQ(std::uint16_t(e % 2 == 0 ? reg & 0xffffu : reg >> 16), want)
                  << (trans ? "V" : "K") << " pair " << pair << " chunk " << chunk << " lane " << lane << " e " << e;
            }
      }
}

TEST(CudaFlashAttentionHost, SplitsRangesAndWorkspace) {
  attention_shape s = shape(2, 1, 700, 4, 2, 128);
  EXPECT_EQ(cuda::flash_splits(s), 3);  // 256 keys a split
  EXPECT_EQ(cuda::flash_workspace_bytes(s), std::size_t(2 * 4 * 3 * 1) * (128 + 2) * 4);
  s.kv_capacity = 256;
  EXPECT_EQ(cuda::flash_splits(s), 1);
  EXPECT_EQ(cuda::flash_workspace_bytes(s), 0u);
  s.kv_capacity = 257;
  EXPECT_EQ(cuda::flash_splits(s), 2);
  s.q_len = 65;  // past the few-query path: never split
  EXPECT_EQ(cuda::flash_splits(s), 1);
  EXPECT_EQ(cuda::flash_workspace_bytes(s), 0u);
  const cuda::key_range r0 = cuda::flash_split_range(0, 256, 600), r2 = cuda::flash_split_range(2, 256, 600),
                        r3 = cuda::flash_split_range(3, 256, 600);
  EXPECT_EQ(r0.begin, 0);
  EXPECT_EQ(r0.end, 256);
  EXPECT_EQ(r2.begin, 512);
  EXPECT_EQ(r2.end, 600);
  EXPECT_LE(r3.end, r3.begin);  // past the block's keys: empty
  EXPECT_TRUE(cuda::flash_head_dim_supported(128));
  EXPECT_TRUE(cuda::flash_head_dim_supported(32));
  EXPECT_FALSE(cuda::flash_head_dim_supported(40));
  EXPECT_FALSE(cuda::flash_head_dim_supported(256));
  EXPECT_EQ(cuda::attention_workspace_bytes<float>(shape(2, 1, 700, 4, 2, 128)), 0u);
  EXPECT_EQ(cuda::attention_workspace_bytes<bfloat16>(shape(2, 1, 700, 4, 2, 40)), 0u);
  EXPECT_EQ(cuda::flash_shared_bytes(128, 64), std::size_t(2 * 2 * 64 * 136 * 2));
}

TEST(CudaFlashAttentionHost, LauncherRefusesWhatItDoesNotTake) {
  const attention_extents e;
  const attention_shape s = shape(1, 2, 2, 2, 1, 64);
  alignas(16) bfloat16 q[256] = {}, k[256] = {}, v[256] = {}, out[256];
  float fq[256] = {}, fout[256];
  EXPECT_EQ(cuda::flash_attention<float>(fq, fq, fq, fout, s, e, attention_mask::full(), nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::flash_attention(q, k, v, out, shape(1, 2, 2, 2, 1, 40), e, attention_mask::full(), nullptr, 0,
                                  nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::flash_attention(q + 1, k, v, out, s, e, attention_mask::full(), nullptr, 0, nullptr),
            cudaErrorInvalidValue);  // misaligned
  EXPECT_EQ(cuda::flash_attention(q, k, v, out, shape(1, 2, 2, 3, 2, 64), e, attention_mask::full(), nullptr, 0,
                                  nullptr),
            cudaErrorInvalidValue);  // heads not a multiple of kv_heads
  EXPECT_EQ(cuda::flash_attention(q, k, v, out, shape(0, 2, 2, 2, 1, 64), e, attention_mask::full(), nullptr, 0,
                                  nullptr),
            cudaSuccess);  // nothing to do
}

// ---- the kernel, emulated ----------------------------------------------------------

// One block (blockIdx (bx, h, b)) of flash_attention_kernel<T, D, Warps,
// KeyTile>, lane by lane, in the kernel's order.
template <class T, int D, int Warps, int KeyTile>
void emulate_block(const T* q, const T* k, const T* v, T* out, float* partial, const attention_shape& s,
                   const attention_extents& e, attention_mask mask, int splits, std::int64_t bx, std::int64_t h,
                   std::int64_t b) {
  constexpr int stride = D + 8, score_tiles = KeyTile / 8, out_tiles = D / 8, q_chunks = D / 16;
  constexpr int rows_per_block = 16 * Warps, pieces = KeyTile * D / 8;
  const float scale_log2 = float(1.4426950408889634 / std::sqrt(double(D)));
  // Unstaged elements are NaN, so reading one shows.
  std::vector<T> k_stage(std::size_t(2 * KeyTile * stride), bits_of<T>(0x7fff)),
      v_stage(std::size_t(2 * KeyTile * stride), bits_of<T>(0x7fff));
  const std::int64_t tile = bx / splits, split = bx % splits;

  struct lane_state {
    std::int64_t row_end[2];
    std::int64_t limit[2];  // row_end clamped to the split's keys
    std::uint32_t qa[q_chunks][4];
    float o[out_tiles][4];
    cuda::online_softmax_base2 rows[2];
  };
  std::vector<lane_state> lanes(std::size_t(32 * Warps));
  std::int64_t block_end = 0;
  for (int w = 0; w < Warps; ++w)
    for (int lane = 0; lane < 32; ++lane) {
      lane_state& L = lanes[std::size_t(32 * w + lane)];
      const std::int64_t row0 = tile * rows_per_block + 16 * w;
      for (int r = 0; r < 2; ++r) {
        const std::int64_t i = row0 + cuda::mma::group_of(lane) + 8 * r;
        L.row_end[r] = i < s.q_len ? cuda::attention_row_of(s, e, mask, b, h, i).key_end : 0;
        L.limit[r] = L.row_end[r];
        block_end = std::max(block_end, L.row_end[r]);
      }
      for (int c = 0; c < q_chunks; ++c)
        for (int reg = 0; reg < 4; ++reg) {
          const cuda::mma::element_at at = cuda::mma::a_element(lane, 2 * reg);
          const std::int64_t i = row0 + at.row;
          if (i >= s.q_len) {
            L.qa[c][reg] = 0;
            continue;
          }
          const T* x = q + cuda::flash_row_at(s, b, h, i) + 16 * c + at.col;
          L.qa[c][reg] = std::uint32_t(x[0].bits) | (std::uint32_t(x[1].bits) << 16);
        }
      for (auto& tile_o : L.o)
        for (float& x : tile_o) x = 0.0f;
    }
  const cuda::key_range range =
      cuda::flash_split_range(split, splits > 1 ? cuda::flash_split_keys : block_end, block_end);
  const std::int64_t kv_at = cuda::attention_kv_at(s, e, b, h), kv_row_stride = s.kv_heads * D;
  for (lane_state& L : lanes)
    for (std::int64_t& end : L.limit) end = std::min(end, range.end);
  const std::int64_t tiles = range.end > range.begin ? (range.end - range.begin + KeyTile - 1) / KeyTile : 0;

  for (std::int64_t n = 0; n < tiles; ++n) {
    const std::int64_t t0 = range.begin + n * KeyTile;
    const int buffer = int(n & 1);
    for (int index = 0; index < pieces; ++index) {  // cp.async, 16 bytes a piece
      const cuda::stage_piece p = cuda::flash_stage_piece(index, D);
      const std::int64_t key = t0 + p.row;
      const bool valid = key < range.end;
      for (int c = 0; c < 8; ++c) {
        const std::size_t to = std::size_t((buffer * KeyTile + p.row) * stride + p.col + c);
        const std::int64_t from = kv_at + key * kv_row_stride + p.col + c;
        k_stage[to] = valid ? k[from] : bits_of<T>(0);
        v_stage[to] = valid ? v[from] : bits_of<T>(0);
      }
    }
    const T* kt = k_stage.data() + buffer * KeyTile * stride;
    const T* vt = v_stage.data() + buffer * KeyTile * stride;
    for (int w = 0; w < Warps; ++w) {
      lane_state* W = lanes.data() + 32 * w;
      bool any = false;
      for (int lane = 0; lane < 32; ++lane) any = any || W[lane].row_end[0] > t0 || W[lane].row_end[1] > t0;
      if (!any) continue;
      float sc[score_tiles][32][4] = {};
      for (int c = 0; c < q_chunks; ++c)
        for (int pair = 0; pair < score_tiles / 2; ++pair) {
          const T* rows[32];
          for (int lane = 0; lane < 32; ++lane) {
            const cuda::stage_piece src = cuda::flash_k_source(lane, pair, c);
            rows[lane] = kt + src.row * stride + src.col;
          }
          std::uint32_t kb[32][4], a[32][4], b0[32][2], b1[32][2];
          warp::ldmatrix_x4(rows, false, kb);
          for (int lane = 0; lane < 32; ++lane) {
            for (int reg = 0; reg < 4; ++reg) a[lane][reg] = W[lane].qa[c][reg];
            b0[lane][0] = kb[lane][0], b0[lane][1] = kb[lane][1], b1[lane][0] = kb[lane][2], b1[lane][1] = kb[lane][3];
          }
          warp::mma_16x8x16<T>(sc[2 * pair], a, b0);
          warp::mma_16x8x16<T>(sc[2 * pair + 1], a, b1);
        }
      std::uint32_t pa[32][score_tiles / 2][4];
      float tile_max[32][2];
      for (int lane = 0; lane < 32; ++lane) {
        float mine[score_tiles][4];
        for (int m = 0; m < score_tiles; ++m)
          for (int c = 0; c < 4; ++c) mine[m][c] = sc[m][lane][c];
        cuda::flash_mask_scores(mine, lane, t0, W[lane].limit, scale_log2, tile_max[lane]);
        for (int m = 0; m < score_tiles; ++m)
          for (int c = 0; c < 4; ++c) sc[m][lane][c] = mine[m][c];
      }
      for (int lane = 0; lane < 32; ++lane) {
        float factor[2];
        for (int r = 0; r < 2; ++r) {
          float quad = -INFINITY;  // __shfl_xor over lanes ^1, ^2
          for (int other = lane & ~3; other < (lane & ~3) + 4; ++other) quad = std::max(quad, tile_max[other][r]);
          factor[r] = W[lane].rows[r].rescale(quad);
        }
        float mine[score_tiles][4];
        for (int m = 0; m < score_tiles; ++m)
          for (int c = 0; c < 4; ++c) mine[m][c] = sc[m][lane][c];
        cuda::flash_exponentiate(mine, W[lane].rows);
        cuda::flash_rescale_output(W[lane].o, factor);
        std::uint32_t packed[score_tiles / 2][4];
        cuda::flash_pack_probabilities<T>(mine, packed);
        for (int c = 0; c < score_tiles / 2; ++c)
          for (int reg = 0; reg < 4; ++reg) pa[lane][c][reg] = packed[c][reg];
      }
      for (int c = 0; c < score_tiles / 2; ++c)
        for (int pair = 0; pair < out_tiles / 2; ++pair) {
          const T* rows[32];
          for (int lane = 0; lane < 32; ++lane) {
            const cuda::stage_piece src = cuda::flash_v_source(lane, pair, c);
            rows[lane] = vt + src.row * stride + src.col;
          }
          std::uint32_t vb[32][4], a[32][4], b0[32][2], b1[32][2];
          float o0[32][4], o1[32][4];
          warp::ldmatrix_x4(rows, true, vb);
          for (int lane = 0; lane < 32; ++lane) {
            for (int reg = 0; reg < 4; ++reg) {
              a[lane][reg] = pa[lane][c][reg];
              o0[lane][reg] = W[lane].o[2 * pair][reg];
              o1[lane][reg] = W[lane].o[2 * pair + 1][reg];
            }
            b0[lane][0] = vb[lane][0], b0[lane][1] = vb[lane][1], b1[lane][0] = vb[lane][2], b1[lane][1] = vb[lane][3];
          }
          warp::mma_16x8x16<T>(o0, a, b0);
          warp::mma_16x8x16<T>(o1, a, b1);
          for (int lane = 0; lane < 32; ++lane)
            for (int reg = 0; reg < 4; ++reg) {
              W[lane].o[2 * pair][reg] = o0[lane][reg];
              W[lane].o[2 * pair + 1][reg] = o1[lane][reg];
            }
        }
    }
  }

  for (int w = 0; w < Warps; ++w)
    for (int lane = 0; lane < 32; ++lane) {
      const lane_state& L = lanes[std::size_t(32 * w + lane)];
      const int g = cuda::mma::group_of(lane), t = cuda::mma::thread_of(lane);
      for (int r = 0; r < 2; ++r) {
        const std::int64_t i = tile * rows_per_block + 16 * w + g + 8 * r;
        if (i >= s.q_len) continue;
        float sum = 0.0f;
        for (int other = lane & ~3; other < (lane & ~3) + 4; ++other)
          sum += lanes[std::size_t(32 * w + other)].rows[r].sum;
        if (splits > 1) {
          const cuda::flash_partial_at at = cuda::flash_partial_of(s, splits, b, h, split, i);
          for (int n = 0; n < out_tiles; ++n) {
            partial[at.o_at + 8 * n + 2 * t] = L.o[n][2 * r];
            partial[at.o_at + 8 * n + 2 * t + 1] = L.o[n][2 * r + 1];
          }
          if (t == 0) {
            partial[at.ml_at] = L.rows[r].max;
            partial[at.ml_at + 1] = sum;
          }
        } else {
          const float inverse = sum > 0.0f ? 1.0f / sum : 0.0f;
          T* y = out + cuda::flash_row_at(s, b, h, i);
          for (int n = 0; n < out_tiles; ++n) {
            const std::uint32_t word = cuda::mma::pack2<T>(L.o[n][2 * r] * inverse, L.o[n][2 * r + 1] * inverse);
            y[8 * n + 2 * t] = bits_of<T>(std::uint16_t(word & 0xffffu));
            y[8 * n + 2 * t + 1] = bits_of<T>(std::uint16_t(word >> 16));
          }
        }
      }
    }
}

// The launcher's choice of block shape and splits, then every block, then the combine.
template <class T, int D>
void emulate_flash_attention(const T* q, const T* k, const T* v, T* out, const attention_shape& s,
                             const attention_extents& e, attention_mask mask, bool workspace) {
  const bool few = s.q_len <= cuda::flash_few_queries;
  const std::int64_t splits = workspace && cuda::flash_workspace_bytes(s) > 0 ? cuda::flash_splits(s) : 1;
  std::vector<float> partial(cuda::flash_workspace_bytes(s) / sizeof(float), NAN);
  const int rows_per_block = few ? 16 : 64;
  const std::int64_t tiles = (s.q_len + rows_per_block - 1) / rows_per_block;
  for (std::int64_t b = 0; b < s.batch; ++b)
    for (std::int64_t h = 0; h < s.heads; ++h)
      for (std::int64_t bx = 0; bx < tiles * splits; ++bx) {
        if (few)
          emulate_block<T, D, 1, 32>(q, k, v, out, partial.data(), s, e, mask, int(splits), bx, h, b);
        else
          emulate_block<T, D, 4, 64>(q, k, v, out, partial.data(), s, e, mask, 1, bx, h, b);
      }
  if (splits <= 1) return;
  for (std::int64_t b = 0; b < s.batch; ++b)
    for (std::int64_t h = 0; h < s.heads; ++h)
      for (std::int64_t i = 0; i < s.q_len; ++i)
        for (std::int64_t d = 0; d < s.head_dim; ++d)
          out[cuda::flash_row_at(s, b, h, i) + d] =
              cuda::from_float<T>(cuda::flash_combine(partial.data(), s, splits, b, h, i, d));
}

// The per-element tolerance described at the top, in double from the inputs.
std::vector<double> flash_tolerance(const attention_case& c, const case_inputs& in, double unit) {
  const attention_shape& s = c.s;
  const attention_extents e = host_extents(c);
  std::vector<double> tolerance(in.want.size(), 0.0);
  const std::int64_t hd = s.head_dim, group = s.heads / s.kv_heads;
  for (std::int64_t b = 0; b < s.batch; ++b)
    for (std::int64_t h = 0; h < s.heads; ++h)
      for (std::int64_t i = 0; i < s.q_len; ++i) {
        const std::int64_t q_length = e.q_lengths ? e.q_lengths[b] : s.q_len;
        if (i >= q_length) continue;
        const std::int64_t kv_length = std::min<std::int64_t>(e.kv_lengths ? e.kv_lengths[b] : s.kv_capacity, s.kv_capacity);
        const std::int64_t position = (e.q_offsets ? e.q_offsets[b] : 0) + i;
        const std::int64_t end = c.mask.key_end(position, kv_length, e.mask_origins ? e.mask_origins[b] : 0);
        if (end <= 0) continue;
        const std::int64_t slot = e.kv_slots ? e.kv_slots[b] : b;
        const float* qr = in.q.data() + ((b * s.q_len + i) * s.heads + h) * hd;
        auto key_row = [&](const std::vector<float>& x, std::int64_t j) {
          return x.data() + ((slot * s.kv_capacity + j) * s.kv_heads + h / group) * hd;
        };
        std::vector<double> score(static_cast<std::size_t>(end));
        double largest = -INFINITY;
        for (std::int64_t j = 0; j < end; ++j) {
          double dot = 0;
          for (std::int64_t d = 0; d < hd; ++d) dot += double(qr[d]) * double(key_row(in.k, j)[d]);
          score[std::size_t(j)] = dot / std::sqrt(double(hd));
          largest = std::max(largest, score[std::size_t(j)]);
        }
        double sum = 0;
        for (double& x : score) sum += (x = std::exp(x - largest));
        for (std::int64_t d = 0; d < hd; ++d) {
          double weighted = 0;
          for (std::int64_t j = 0; j < end; ++j) weighted += score[std::size_t(j)] * std::fabs(key_row(in.v, j)[d]);
          const std::size_t at = std::size_t(((b * s.q_len + i) * s.heads + h) * hd + d);
          tolerance[at] = unit * (weighted / sum + std::fabs(in.want[at])) + 1e-6;
        }
      }
  return tolerance;
}

bool flash_takes(const attention_case& c) { return cuda::flash_head_dim_supported(c.s.head_dim) && !c.misaligned; }

template <class T>
void check_emulated_cases(std::uint32_t seed) {
  int checked = 0;
  for (const attention_case& c : attention_cases()) {
    if (!flash_takes(c)) continue;
    for (bool workspace : {true, false}) {
      if (!workspace && cuda::flash_splits(c.s) <= 1) continue;
      SCOPED_TRACE(c.name + " " + type_name<T>() + (workspace ? "" : " (no workspace: one split)"));
      std::vector<T> q, k, v;
      const case_inputs in = make_inputs<T>(c, seed += 10, q, k, v);
      std::vector<T> out(q_elements(c), bits_of<T>(0x7fff));
      const attention_extents e = host_extents(c);
      switch (c.s.head_dim) {
        case 32: emulate_flash_attention<T, 32>(q.data(), k.data(), v.data(), out.data(), c.s, e, c.mask, workspace); break;
        case 64: emulate_flash_attention<T, 64>(q.data(), k.data(), v.data(), out.data(), c.s, e, c.mask, workspace); break;
        case 96: emulate_flash_attention<T, 96>(q.data(), k.data(), v.data(), out.data(), c.s, e, c.mask, workspace); break;
        default: emulate_flash_attention<T, 128>(q.data(), k.data(), v.data(), out.data(), c.s, e, c.mask, workspace);
      }
      expect_close(c, widen(out), in.want, flash_tolerance(c, in, rounding_unit<T>()));
      ++checked;
    }
  }
  EXPECT_GE(checked, 15);  // the cases above: a shrinking list would pass by checking less
}

TEST(CudaFlashAttentionHost, EmulatedKernelMatchesCpuBFloat16) { check_emulated_cases<bfloat16>(500); }
TEST(CudaFlashAttentionHost, EmulatedKernelMatchesCpuHalf) { check_emulated_cases<half>(600); }

// ---- device tests ----------------------------------------------------------------

template <class T>
void check_device_case(const attention_case& c, std::uint32_t seed) {
  SCOPED_TRACE(c.name + " " + type_name<T>());
  std::vector<T> q, k, v;
  const case_inputs in = make_inputs<T>(c, seed, q, k, v);
  const bool flash = flash_takes(c);
  const std::vector<double> tolerance = flash ? flash_tolerance(c, in, rounding_unit<T>())
                                              : std::vector<double>(in.want.size(), reference_tolerance(in.want, rounding_unit<T>()));
  device_array<unsigned char> workspace;
  const std::size_t bytes = cuda::attention_workspace_bytes<T>(c.s);
  if (bytes > 0) ASSERT_EQ(workspace.allocate(bytes), cudaSuccess);
  std::vector<float> chosen, unsplit, reference;
  run_on_device(
      c, q, k, v,
      [&](const T* dq, const T* dk, const T* dv, T* dout, const attention_extents& e) {
        EXPECT_EQ(cuda::flash_attention_applies(dq, dk, dv, dout, c.s), flash);
        return cuda::attention<T>(dq, dk, dv, dout, c.s, e, c.mask, workspace.data, bytes, nullptr);
      },
      chosen);
  expect_close(c, chosen, in.want, tolerance);
  run_on_device(
      c, q, k, v,
      [&](const T* dq, const T* dk, const T* dv, T* dout, const attention_extents& e) {
        return cuda::attention_reference<T>(dq, dk, dv, dout, c.s, e, c.mask, nullptr);
      },
      reference);
  expect_close(c, reference, in.want, reference_tolerance(in.want, rounding_unit<T>()));
  if (!flash) return;
  run_on_device(
      c, q, k, v,
      [&](const T* dq, const T* dk, const T* dv, T* dout, const attention_extents& e) {
        return cuda::flash_attention<T>(dq, dk, dv, dout, c.s, e, c.mask, nullptr, 0, nullptr);
      },
      unsplit);
  expect_close(c, unsplit, in.want, tolerance);
  // Against today's kernel: both within their bounds of the CPU, so within the sum of each other.
  std::vector<double> both(tolerance);
  const double reference_bound = reference_tolerance(in.want, rounding_unit<T>());
  for (double& x : both) x += reference_bound;
  expect_close(c, chosen, reference, both);
}

template <class T>
void check_device_cases(std::uint32_t seed) {
  for (const attention_case& c : attention_cases()) check_device_case<T>(c, seed += 10);
}

TEST(CudaFlashAttention, MatchesCpuAndReferenceBFloat16) {
  UNMASK_REQUIRE_DEVICE();
  check_device_cases<bfloat16>(700);
}

TEST(CudaFlashAttention, MatchesCpuAndReferenceHalf) {
  UNMASK_REQUIRE_DEVICE();
  check_device_cases<half>(800);
}

}  // namespace
}  // namespace unmask
