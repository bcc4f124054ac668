// unmask/cuda/vector_io.hpp
//
// What every CUDA kernel of unmask shares: element conversion to and from
// float (the project's own `half` / `bfloat16` structs, converted with the
// same host/device functions as the CPU backend), loads and stores of N
// consecutive elements as the widest naturally aligned words (16 bytes, i.e.
// one 128-bit transaction, at most), and `scan_range`, which walks a block's
// share of a long row with 16-byte loads. A row that does not start on a
// 16-byte boundary (an odd vocabulary size makes every other row misaligned)
// is peeled: its first few elements are read one by one, the aligned middle
// with vector loads, the last few one by one again. Every thread visits its
// elements in increasing index order, which is what lets a "first index wins"
// argmax run per thread with a strict comparison. The functions are
// host/device so tests can run a block's threads one after the other on the
// host and compare the partition itself without a GPU.
//
// These headers need nvcc (they define kernels); include them from .cu files.
#pragma once

#if !defined(__CUDACC__)
#error "unmask/cuda headers define CUDA kernels: compile this translation unit with nvcc"
#endif

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "unmask/core/config.hpp"
#include "unmask/core/dtype.hpp"

// `#pragma unroll` for host/device code: the host compiler does not know it.
#if UNMASK_ON_DEVICE
#define UNMASK_UNROLL _Pragma("unroll")
#else
#define UNMASK_UNROLL
#endif

namespace unmask::cuda {

// The element types the kernels compute with.
template <class T>
inline constexpr bool is_element_v =
    std::is_same_v<T, float> || std::is_same_v<T, half> || std::is_same_v<T, bfloat16>;

// Elements per 16-byte vector.
template <class T>
inline constexpr int vector_width = int(16 / sizeof(T));

// float -> T with the project's round-to-nearest-even conversions.
template <class T>
UNMASK_HOST_DEVICE T from_float(float x) {
  static_assert(is_element_v<T>, "element type must be float, unmask::half or unmask::bfloat16");
  if constexpr (std::is_same_v<T, float>) return x;
  else if constexpr (std::is_same_v<T, half>) return to_half(x);
  else return to_bfloat16(x);
}

// mul_rn and add_rn (unmask/core/config.hpp) keep products and sums rounded
// as the CPU rounds them.

UNMASK_HOST_DEVICE bool is_aligned(const void* p, std::size_t bytes) {
  return reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
}

namespace detail {

template <int Bytes> struct word_of;
template <> struct word_of<2> { using type = unsigned short; };
template <> struct word_of<4> { using type = unsigned int; };
template <> struct word_of<8> { using type = uint2; };
template <> struct word_of<16> { using type = uint4; };

// The word that moves `Bytes` (a power of two) in as few aligned accesses as possible.
template <int Bytes>
using access_word = typename word_of<(Bytes < 16 ? Bytes : 16)>::type;

}  // namespace detail

// out[i] = float(p[i]) for i < N. p must be aligned to min(16, N * sizeof(U))
// bytes. Streaming loads (ld.global.cs) suit data read exactly once, such as
// logits; they must not be used for data this kernel itself wrote.
template <int N, bool Streaming = false, class U>
UNMASK_HOST_DEVICE void load_floats(const U* p, float (&out)[N]) {
  static_assert(is_element_v<U>, "element type must be float, unmask::half or unmask::bfloat16");
  constexpr int bytes = N * int(sizeof(U));
  static_assert(N > 0 && (bytes & (bytes - 1)) == 0, "N * sizeof(U) must be a power of two");
  U raw[N];
#if UNMASK_ON_DEVICE
  using word = detail::access_word<bytes>;
  constexpr int words = bytes / int(sizeof(word));
  word w[words];
  const word* src = reinterpret_cast<const word*>(p);
UNMASK_UNROLL
  for (int k = 0; k < words; ++k) {
    if constexpr (Streaming) w[k] = __ldcs(src + k);
    else w[k] = src[k];
  }
  memcpy(raw, w, bytes);
#else
  std::memcpy(raw, p, bytes);
#endif
UNMASK_UNROLL
  for (int i = 0; i < N; ++i) out[i] = to_float(raw[i]);
}

// p[i] = U(in[i]) for i < N, with the same alignment rule as load_floats.
template <int N, class U>
UNMASK_HOST_DEVICE void store_floats(U* p, const float (&in)[N]) {
  static_assert(is_element_v<U>, "element type must be float, unmask::half or unmask::bfloat16");
  constexpr int bytes = N * int(sizeof(U));
  static_assert(N > 0 && (bytes & (bytes - 1)) == 0, "N * sizeof(U) must be a power of two");
  U raw[N];
UNMASK_UNROLL
  for (int i = 0; i < N; ++i) raw[i] = from_float<U>(in[i]);
#if UNMASK_ON_DEVICE
  using word = detail::access_word<bytes>;
  constexpr int words = bytes / int(sizeof(word));
  word w[words];
  memcpy(w, raw, bytes);
  word* dst = reinterpret_cast<word*>(p);
UNMASK_UNROLL
  for (int k = 0; k < words; ++k) dst[k] = w[k];
#else
  std::memcpy(p, raw, bytes);
#endif
}

// Calls visit(value, first + offset) for the elements p[offset], offset in
// [0, n), that thread `thread` of a `Block`-thread block owns, in increasing
// offset order. Layout: a scalar head up to the first 16-byte boundary (at
// most 16 / sizeof(T) - 1 elements, threads 0.. take one each), the aligned
// body in 16-byte vectors (vector j belongs to thread j % Block; each thread
// issues `Unroll` independent loads before using any, to keep enough bytes in
// flight), then a scalar tail shorter than one vector. `visit` may be a
// host-only callable when scan_range runs on the host (tests emulate a block
// thread by thread), hence nvcc's execution-space check is off for it.
#pragma nv_exec_check_disable
template <int Block, int Unroll, bool Streaming, class T, class Visit>
UNMASK_HOST_DEVICE void scan_range(const T* p, std::int64_t n, std::int64_t first, int thread, Visit&& visit) {
  static_assert(is_element_v<T>, "element type must be float, unmask::half or unmask::bfloat16");
  static_assert(Block >= 16 && Unroll >= 1, "a block must cover the scalar head and tail");
  constexpr int width = vector_width<T>;
  const std::uintptr_t address = reinterpret_cast<std::uintptr_t>(p);
  std::int64_t head = std::int64_t(((16u - address % 16u) % 16u) / sizeof(T));
  if (head > n) head = n;
  if (thread < head) {
    float v[1];
    load_floats<1, Streaming>(p + thread, v);
    visit(v[0], first + thread);
  }
  const T* body = p + head;
  const std::int64_t vectors = (n - head) / width;
  for (std::int64_t base = thread; base < vectors; base += std::int64_t(Unroll) * Block) {
    float values[Unroll][width] = {};
UNMASK_UNROLL
    for (int u = 0; u < Unroll; ++u) {
      const std::int64_t j = base + std::int64_t(u) * Block;
      if (j < vectors) load_floats<width, Streaming>(body + j * width, values[u]);
    }
UNMASK_UNROLL
    for (int u = 0; u < Unroll; ++u) {
      const std::int64_t j = base + std::int64_t(u) * Block;
      if (j < vectors) {
UNMASK_UNROLL
        for (int e = 0; e < width; ++e) visit(values[u][e], first + head + j * width + e);
      }
    }
  }
  const std::int64_t done = head + vectors * width;
  if (thread < n - done) {
    float v[1];
    load_floats<1, Streaming>(p + done + thread, v);
    visit(v[0], first + done + thread);
  }
}

// Kernel launch results: the error of the launch just made, as a launcher returns it.
inline cudaError_t launch_result() { return cudaGetLastError(); }

}  // namespace unmask::cuda
