// The machine's ceilings, measured in the same run as the benchmarks that
// are reported against them (a shared, noisy machine gives different numbers
// from one minute to the next, so only ratios within one run mean much):
//   fp32 FMA peak per instruction-set level: independent multiply-add chains
//     on registers only (AVX-512 zmm and AVX2 ymm fused; the portable level
//     as its vectors compile, separate multiply and add without FMA flags)
//   bf16 dot-product peak: vdpbf16ps chains (AVX512-BF16 only)
//   DRAM read bandwidth: a 1 GiB array, far larger than any L3, read once,
//     the faster of one stream and four streams through 64 KiB blocks
//   L3-resident read bandwidth: 4 MiB per thread, read again and again
// each on one thread and on every thread of the pool at once; every figure
// is the best of several repetitions. GFLOP/s count a multiply-add as 2.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "unmask/cpu/isa.hpp"
#include "unmask/cpu/parallel.hpp"

// GCC's unroll pragma keeps the accumulator chains in registers; nvcc's
// front end (bench_decode_cuda includes this file) does not know it.
#if defined(__CUDACC__)
#define UNMASK_BENCH_UNROLL(n)
#else
#define UNMASK_BENCH_PRAGMA(x) _Pragma(#x)
#define UNMASK_BENCH_UNROLL(n) UNMASK_BENCH_PRAGMA(GCC unroll n)
#endif

#if UNMASK_CPU_X86
#include <immintrin.h>
#endif

namespace unmask::bench {

using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

namespace detail {

constexpr long peak_iterations = 2'000'000;  // about 20 ms a thread

typedef float f32x8 __attribute__((vector_size(32)));

// Portable: the compiler's own vectors, as the portable kernels use them.
__attribute__((noinline)) inline float peak_portable(long iterations) {
  f32x8 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = f32x8{} + 0.001f * float(i);
  const f32x8 b = f32x8{} + 0.999f, c = f32x8{} + 0.0001f;
  for (long it = 0; it < iterations; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = acc[i] * b + c;
  float s = 0;
  for (int i = 0; i < 12; ++i) s += acc[i][0];
  return s;
}

#if UNMASK_CPU_X86
__attribute__((target("avx2,fma"), noinline)) inline float peak_avx2(long iterations) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(0.001f * float(i));
  const __m256 b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.0001f);
  for (long it = 0; it < iterations; ++it)
UNMASK_BENCH_UNROLL(12)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  return _mm_cvtss_f32(_mm256_castps256_ps128(s));
}

__attribute__((target("avx512f"), noinline)) inline float peak_avx512(long iterations) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(0.001f * float(i));
  const __m512 b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(0.0001f);
  for (long it = 0; it < iterations / 2; ++it)
UNMASK_BENCH_UNROLL(24)
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  float t[16];
  _mm512_storeu_ps(t, s);
  return t[0] + t[15];
}

__attribute__((target("avx512f,avx512bf16"), noinline)) inline float peak_bf16(long iterations) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(0.001f * float(i));
  const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f7f3f7f), b = (__m512bh)_mm512_set1_epi32(0x38d138d1);
  for (long it = 0; it < iterations / 2; ++it)
UNMASK_BENCH_UNROLL(24)
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  float t[16];
  _mm512_storeu_ps(t, s);
  return t[0] + t[15];
}
#endif

// FLOPs of one peak call: 12 vectors x 8 lanes x 2 per iteration (the
// 512-bit loops do half the iterations on 24 vectors of 16: four times as
// many FLOPs per iteration; vdpbf16ps does two multiply-adds per lane).
inline double peak_flops(const std::string& kind, long iterations) {
  if (kind == "avx512") return double(iterations / 2) * 24 * 16 * 2;
  if (kind == "bf16") return double(iterations / 2) * 24 * 16 * 4;
  return double(iterations) * 12 * 8 * 2;
}

inline float run_peak(const std::string& kind, long iterations) {
#if UNMASK_CPU_X86
  if (kind == "avx2") return peak_avx2(iterations);
  if (kind == "avx512") return peak_avx512(iterations);
  if (kind == "bf16") return peak_bf16(iterations);
#endif
  return peak_portable(iterations);
}

// Sums a float array with vector loads, either as one sequential stream or
// as four streams through consecutive 64 KiB blocks (the way the one-row
// GEMM reads four panels); the ceiling is the faster (on some machines one
// stream leaves DRAM idle between prefetches, on others streams far apart
// thrash DRAM pages). Enough accumulators that the adds never limit.
constexpr std::size_t block_floats = 16384;

// Element offset of load j (of 4 per step) at step i: sequential, or four
// streams through consecutive blocks.
inline std::size_t read_offset(std::size_t i, int a, std::size_t lanes, bool blocked) {
  if (!blocked) return i * 4 * lanes + std::size_t(a) * lanes;
  const std::size_t per_block = block_floats / lanes, block = i / per_block, within = i % per_block;
  return block * 4 * block_floats + std::size_t(a) * block_floats + within * lanes;
}

__attribute__((noinline)) inline float read_portable(const float* p, std::size_t n, bool blocked) {
  f32x8 acc[4] = {};
  const std::size_t steps = n / (4 * block_floats) * block_floats / 8;
  for (std::size_t i = 0; i < steps; ++i)
    for (int a = 0; a < 4; ++a) {
      f32x8 v;
      std::memcpy(&v, p + read_offset(i, a, 8, blocked), sizeof v);
      acc[a] += v;
    }
  const f32x8 s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  return s[0] + s[7];
}
#if UNMASK_CPU_X86
__attribute__((target("avx2"), noinline)) inline float read_avx2(const float* p, std::size_t n, bool blocked) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const std::size_t steps = n / (4 * block_floats) * block_floats / 8;
  for (std::size_t i = 0; i < steps; ++i)
    for (int a = 0; a < 4; ++a) acc[a] = _mm256_add_ps(acc[a], _mm256_loadu_ps(p + read_offset(i, a, 8, blocked)));
  const __m256 s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
  return _mm_cvtss_f32(_mm256_castps256_ps128(s));
}
__attribute__((target("avx512f"), noinline)) inline float read_avx512(const float* p, std::size_t n, bool blocked) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  const std::size_t steps = n / (4 * block_floats) * block_floats / 16;
  for (std::size_t i = 0; i < steps; ++i)
    for (int a = 0; a < 4; ++a) acc[a] = _mm512_add_ps(acc[a], _mm512_loadu_ps(p + read_offset(i, a, 16, blocked)));
  float t[16];
  _mm512_storeu_ps(t, _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  return t[0] + t[15];
}
#endif

inline float read_array(const float* p, std::size_t n, bool blocked) {
#if UNMASK_CPU_X86
  if (cpu::detected_isa() >= cpu::isa_level::avx512) return read_avx512(p, n, blocked);
  if (cpu::detected_isa() >= cpu::isa_level::avx2) return read_avx2(p, n, blocked);
#endif
  return read_portable(p, n, blocked);
}

}  // namespace detail

struct ceiling_pair {
  double one = 0, all = 0;  // one thread, every thread of the pool
};

struct ceilings {
  int threads = 1;
  std::vector<std::pair<std::string, ceiling_pair>> fma;  // GFLOP/s per level name
  ceiling_pair bf16_dot;                                  // GFLOP/s; 0 without AVX512-BF16
  ceiling_pair dram_read, l3_read;                        // GB/s

  // The fp32 peak of a level (its name from cpu::isa_name; avx512_bf16 has avx512's).
  double fma_peak(const std::string& level, int thread_count) const {
    const std::string key = level == "avx512_bf16" ? "avx512" : level;
    for (const auto& [name, p] : fma)
      if (name == key) return thread_count > 1 ? p.all : p.one;
    return 0;
  }
};

// Runs f(t) on `threads` threads at once (t < threads); returns the wall time.
template <class F>
double on_threads(int threads, F&& f) {
  const auto start = clock_type::now();
  if (threads <= 1) f(0);
  else cpu::parallel_for(0, threads, [&](std::int64_t t) { f(int(t)); }, cpu::min_parallel_work);
  return seconds_since(start);
}

inline ceiling_pair measure_peak(const std::string& kind, int threads, int repeats) {
  ceiling_pair best;
  volatile float sink = 0;
  for (int r = 0; r < repeats; ++r) {
    const long it = detail::peak_iterations;
    const double one = on_threads(1, [&](int) { sink = sink + detail::run_peak(kind, it); });
    best.one = std::max(best.one, detail::peak_flops(kind, it) / one / 1e9);
    if (threads > 1) {
      const double all = on_threads(threads, [&](int) { sink = sink + detail::run_peak(kind, it); });
      best.all = std::max(best.all, threads * detail::peak_flops(kind, it) / all / 1e9);
    }
  }
  if (threads <= 1) best.all = best.one;
  return best;
}

// Read bandwidth over `bytes_per_thread` per thread, `passes` reads each.
inline ceiling_pair measure_read(std::size_t bytes_per_thread, int threads, int passes, int repeats) {
  const std::size_t n = bytes_per_thread / sizeof(float);
  std::vector<std::vector<float>> arrays(static_cast<std::size_t>(threads));
  cpu::parallel_for(0, threads, [&](std::int64_t t) { arrays[std::size_t(t)].assign(n, 1.0f); }, cpu::min_parallel_work);
  ceiling_pair best;
  volatile float sink = 0;
  for (int r = 0; r < repeats; ++r)
    for (bool blocked : {false, true}) {
      const double one = on_threads(1, [&](int) {
        for (int p = 0; p < passes; ++p) sink = sink + detail::read_array(arrays[0].data(), n, blocked);
      });
      best.one = std::max(best.one, double(passes) * double(n * sizeof(float)) / one / 1e9);
      if (threads > 1) {
        const double all = on_threads(threads, [&](int t) {
          for (int p = 0; p < passes; ++p) sink = sink + detail::read_array(arrays[std::size_t(t)].data(), n, blocked);
        });
        best.all = std::max(best.all, double(threads) * passes * double(n * sizeof(float)) / all / 1e9);
      }
    }
  if (threads <= 1) best.all = best.one;
  return best;
}

// The fp32 FMA peak of a level on `threads` threads, measured again now
// (short): benchmarks compare each result with a peak taken right after it,
// since a shared machine's speed drifts within a run.
inline double fma_peak_now(const std::string& level, int threads) {
  const std::string kind = level == "avx512_bf16" ? "avx512" : level;
  const ceiling_pair p = measure_peak(kind, threads, 2);
  return threads > 1 ? p.all : p.one;
}
inline double bf16_peak_now(int threads) {
  const ceiling_pair p = measure_peak("bf16", threads, 2);
  return threads > 1 ? p.all : p.one;
}

// Every ceiling; `quick` for smoke runs (seconds, not meaningful figures).
inline ceilings measure_ceilings(bool quick = false) {
  ceilings c;
  c.threads = cpu::thread_count();
  const int repeats = quick ? 1 : 5;
  const cpu::isa_level best = cpu::detected_isa();
  c.fma.push_back({"portable", measure_peak("portable", c.threads, repeats)});
  if (best >= cpu::isa_level::avx2) c.fma.push_back({"avx2", measure_peak("avx2", c.threads, repeats)});
  if (best >= cpu::isa_level::avx512) c.fma.push_back({"avx512", measure_peak("avx512", c.threads, repeats)});
  if (best >= cpu::isa_level::avx512_bf16) c.bf16_dot = measure_peak("bf16", c.threads, repeats);
  c.dram_read = measure_read(quick ? (std::size_t(16) << 20) : (std::size_t(1) << 30), c.threads, 1, quick ? 1 : 3);
  c.l3_read = measure_read(std::size_t(4) << 20, c.threads, quick ? 2 : 20, repeats);
  return c;
}

}  // namespace unmask::bench
