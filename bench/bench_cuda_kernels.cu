// CUDA kernel benchmarks, without Google Benchmark (a GPU machine may lack
// it). Each row times one of unmask's kernels at a shape of LLaDA-8B
// (d_model 4096, 32 heads of 128, MLP 12288, vocabulary 126464) or Dream-7B
// (vocabulary 152064) and reports the time per call, the rate at which it
// moves the bytes its shapes say it must (GB/s, bytes read + bytes written,
// each counted once: the least traffic, so re-reads served by L1/L2 are not
// counted) and, for the matrix kernels, TFLOP/s; each as a fraction of a
// ceiling measured on this GPU at start-up:
//   copy  cudaMemcpyAsync device to device of 1 GiB, read + write bytes,
//         best of 5: what a streaming kernel can hope for;
//   gemm  the best bf16 TFLOP/s of the project's own cuBLASLt wrapper
//         (unmask::cuda::gemm_engine) on square 8192^3 (and 4096^3)
//         products: the "cuBLASLt peak measured here", not the datasheet
//         number.
// Timing: cudaEvent pairs around N back-to-back launches on one stream, after
// three warm-up calls (which build the GEMM plans and load the modules); N is
// picked from a calibration run so that a batch lasts about 25 ms (5 ms with
// --short), and a row shows the median time per call over 5 batches (3), the
// JSON the best as well. Launched one by one from the host, a kernel shorter
// than the launch latency (~2-4 us) shows that latency instead of its own
// time; --graph records each batch as a CUDA graph and replays it, as the
// decoder's step_graph does, which leaves the kernels' own time.
// L2: each row keeps its inputs and outputs in `sets` copies totalling at
// least 256 MiB and 4x the GPU's L2 (an H100 has 50 MB), and consecutive
// launches cycle through the copies, so a memory-bound kernel reads from DRAM
// as in a real forward, not from the L2 the previous launch filled. Small
// tables a real step finds cached (row lists, extents, norm weights, the
// sequences of a selection) are shared by the copies; the embedding table
// (1 GB) is shared too, and each copy gathers its own random tokens.
// What each row counts is said at its bench_* function below.
//
//   bench_cuda_kernels [--short] [--graph] [--json FILE] [--filter TEXT] [--rotate-mb N] [--device N]
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "unmask/cuda/argmax.hpp"
#include "unmask/cuda/attention.hpp"
#include "unmask/cuda/device_buffer.hpp"
#include "unmask/cuda/embedding.hpp"
#include "unmask/cuda/error.hpp"
#include "unmask/cuda/gemm.hpp"
#include "unmask/cuda/rmsnorm.hpp"
#include "unmask/cuda/rope.hpp"
#include "unmask/cuda/selection.hpp"
#include "unmask/cuda/step_graph.hpp"
#include "unmask/cuda/swiglu.hpp"
#include "unmask/cuda/vocab_pass.hpp"

namespace {

namespace cu = unmask::cuda;
using unmask::bfloat16;
using unmask::concat;
using unmask::cuda::check;

constexpr std::size_t mib = std::size_t(1) << 20;
constexpr std::size_t gib = std::size_t(1) << 30;

// LLaDA-8B (Dream-7B differs in the vocabulary only, for what is timed here).
constexpr std::int64_t d_model = 4096, mlp_hidden = 12288, n_heads = 32, head_dim = 128;
constexpr std::int64_t llada_vocab = 126464, dream_vocab = 152064;
constexpr std::int32_t llada_mask_id = 126336, dream_mask_id = 151666;
constexpr float rope_theta = 500000.0f, rms_eps = 1e-5f;

constexpr std::size_t region_alignment = 256;  // bytes; 16 is what the vectorised kernels need
constexpr int max_sets = 4096;
constexpr int warmup_calls = 3;
constexpr int max_calls = 5000;  // per timed batch

struct options {
  bool short_run = false;
  bool graph = false;
  std::string json_path;
  std::string filter;
  std::size_t rotate_bytes = 256 * mib;
  int device = 0;
};

const char* const usage =
    "usage: bench_cuda_kernels [--short] [--graph] [--json FILE] [--filter TEXT] [--rotate-mb N] [--device N]\n"
    "  Times unmask's CUDA kernels at LLaDA-8B / Dream-7B shapes against the copy bandwidth and the\n"
    "  cuBLASLt bf16 GEMM rate measured on this GPU.\n"
    "  --short        fewer shapes, shorter batches (well under a minute on an H100)\n"
    "  --graph        replay each timed batch as a CUDA graph (no host launch latency)\n"
    "  --json FILE    also write the ceilings and the rows as JSON\n"
    "  --filter TEXT  only rows whose \"kernel shape\" contains TEXT (the ceilings are always measured)\n"
    "  --rotate-mb N  cycle inputs over at least N MiB (default 256; never under 4x the L2)\n"
    "  --device N     the CUDA device to use (default 0)\n";

// Returns false when the program should stop (help printed); throws
// std::invalid_argument on a bad command line.
bool parse(int argc, char** argv, options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(concat(a, " needs a value (see --help)"));
      return argv[++i];
    };
    const auto number = [&](long low, long high) {
      const std::string v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < low || n > high)
        throw std::invalid_argument(concat(a, " needs an integer in [", low, ", ", high, "], got '", v, "'"));
      return n;
    };
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return false;
    } else if (a == "--short") {
      o.short_run = true;
    } else if (a == "--graph") {
      o.graph = true;
    } else if (a == "--json") {
      o.json_path = value();
    } else if (a == "--filter") {
      o.filter = value();
    } else if (a == "--rotate-mb") {
      o.rotate_bytes = std::size_t(number(1, 1 << 16)) * mib;
    } else if (a == "--device") {
      o.device = int(number(0, 1023));
    } else {
      throw std::invalid_argument(concat("unknown option '", a, "' (see --help)"));
    }
  }
  return true;
}

template <class T>
const char* type_name() {
  return std::is_same_v<T, float> ? "f32" : "bf16";
}

// ---- filling the inputs ------------------------------------------------------

__host__ __device__ inline std::uint32_t mix(std::uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return std::uint32_t(x >> 32);
}

// p[i] uniform in [low, low + span).
template <class T>
__global__ void fill_uniform_kernel(T* p, std::size_t n, std::uint64_t seed, float low, float span) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float u = float(mix(seed + i) >> 8) * (1.0f / 16777216.0f);
    p[i] = cu::from_float<T>(low + span * u);
  }
}

// p[i] uniform in [0, modulus).
__global__ void fill_integers_kernel(std::int32_t* p, std::size_t n, std::uint64_t seed, std::uint32_t modulus) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    p[i] = std::int32_t(mix(seed + i) % modulus);
}

// p[i] = offset + (i mod stride) mod period: iota, a constant (period 1), or
// the same pattern in every copy of a rotated region (stride = its elements).
__global__ void fill_pattern_kernel(std::int32_t* p, std::size_t n, std::size_t stride, std::size_t period,
                                    std::int32_t offset) {
  const std::size_t step = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    p[i] = offset + std::int32_t((i % stride) % period);
}

unsigned fill_blocks(std::size_t n) { return unsigned(std::min<std::size_t>((n + 255) / 256, 8192)); }

std::uint64_t next_seed() {
  static std::uint64_t seed = 0;
  return ++seed * 0x9e3779b97f4a7c15ull;
}

template <class T>
void fill_uniform(T* p, std::size_t n, float low, float high, cudaStream_t stream) {
  if (n == 0) return;
  fill_uniform_kernel<T><<<fill_blocks(n), 256, 0, stream>>>(p, n, next_seed(), low, high - low);
  check(cudaGetLastError(), "filling a benchmark input");
}

void fill_integers(std::int32_t* p, std::size_t n, std::uint32_t modulus, cudaStream_t stream) {
  if (n == 0) return;
  fill_integers_kernel<<<fill_blocks(n), 256, 0, stream>>>(p, n, next_seed(), modulus);
  check(cudaGetLastError(), "filling a benchmark input");
}

void fill_pattern(std::int32_t* p, std::size_t n, std::size_t stride, std::size_t period, std::int32_t offset,
                  cudaStream_t stream) {
  if (n == 0) return;
  fill_pattern_kernel<<<fill_blocks(n), 256, 0, stream>>>(p, n, stride, period, offset);
  check(cudaGetLastError(), "filling a benchmark input");
}

// ---- where a row's buffers live ----------------------------------------------

// A row's buffers as regions of one device arena: a shared region once, a
// rotated region once per set (its copies contiguous, `stride` bytes apart).
// Set s of the launch uses copy s of every rotated region.
class layout {
 public:
  int shared(std::size_t bytes) { return add(bytes, false); }
  int rotated(std::size_t bytes) { return add(bytes, true); }

  // Sets: enough copies of the rotated regions to total rotate_bytes, at
  // least one; grows the arena (dropping its contents) and fixes the addresses.
  void place(cu::device_buffer<std::byte>& arena, std::size_t rotate_bytes) {
    std::size_t per_set = 0;
    for (const region& r : regions_)
      if (r.rotated) per_set += r.stride;
    sets_ = 1;
    if (per_set > 0) sets_ = int(std::clamp<std::size_t>((rotate_bytes + per_set - 1) / per_set, 1, max_sets));
    std::size_t at = 0;
    for (region& r : regions_) {
      r.offset = at;
      at += r.stride * copies(r);
    }
    arena.reserve_at_least(at);
    base_ = arena.data();
  }

  int sets() const { return sets_; }

  template <class T>
  T* at(int id, int set = 0) const {
    const region& r = regions_[std::size_t(id)];
    return reinterpret_cast<T*>(base_ + r.offset + (r.rotated ? std::size_t(set) * r.stride : 0));
  }
  // Elements of T over every copy of a region, padding included (for filling).
  template <class T>
  std::size_t span(int id) const {
    const region& r = regions_[std::size_t(id)];
    return r.stride * copies(r) / sizeof(T);
  }
  // Elements of T from one copy of a region to the next.
  template <class T>
  std::size_t stride(int id) const {
    return regions_[std::size_t(id)].stride / sizeof(T);
  }

 private:
  struct region {
    std::size_t stride = 0, offset = 0;
    bool rotated = false;
  };
  std::size_t copies(const region& r) const { return r.rotated ? std::size_t(sets_) : 1; }
  int add(std::size_t bytes, bool rotated) {
    const std::size_t stride = (std::max<std::size_t>(bytes, 1) + region_alignment - 1) / region_alignment *
                               region_alignment;
    regions_.push_back({stride, 0, rotated});
    return int(regions_.size()) - 1;
  }

  std::vector<region> regions_;
  std::byte* base_ = nullptr;
  int sets_ = 1;
};

// ---- timing and reporting ----------------------------------------------------

struct measurement {
  double median_us = 0, best_us = 0;  // per call
  int calls = 0;                      // per timed batch
  int batches = 0;
};

struct row {
  std::string kernel, shape, type;
  measurement time;
  int sets = 1;
  double bytes = 0;  // per call; 0: no bandwidth reported
  double flops = 0;  // per call; 0: no FLOP rate reported
  double gbps() const { return bytes / (time.median_us * 1e3); }
  double tflops() const { return flops / (time.median_us * 1e6); }
};

class bench {
 public:
  bench(const options& o, const cudaDeviceProp& prop) : options_(o), prop_(prop) {
    rotate_bytes_ = std::max(o.rotate_bytes, 4 * std::size_t(prop.l2CacheSize));
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating the benchmark stream");
    check(cudaEventCreate(&start_), "creating a timing event");
    check(cudaEventCreate(&stop_), "creating a timing event");
    check(gemm_.create(), "creating the cuBLASLt GEMM engine");
  }
  bench(const bench&) = delete;
  bench& operator=(const bench&) = delete;
  ~bench() {
    if (stream_) cudaStreamSynchronize(stream_);
    if (stop_) cudaEventDestroy(stop_);
    if (start_) cudaEventDestroy(start_);
    gemm_.release();
    if (stream_) cudaStreamDestroy(stream_);
  }

  cudaStream_t stream() const { return stream_; }
  bool short_run() const { return options_.short_run; }
  cu::gemm_engine& gemm() { return gemm_; }

  bool wanted(const std::string& kernel, const std::string& shape) const {
    return options_.filter.empty() || concat(kernel, " ", shape).find(options_.filter) != std::string::npos;
  }

  // Lays the row's buffers out in the arena; its old contents are gone.
  void place(layout& l) {
    check(cudaStreamSynchronize(stream_), "finishing the previous row");
    l.place(arena_, rotate_bytes_);
    // device_buffer zeroes new memory on the legacy stream, which this
    // non-blocking stream does not wait for.
    check(cudaDeviceSynchronize(), "zeroing the benchmark buffers");
  }

  template <class T>
  void upload(T* device, const std::vector<T>& host) {
    check(cudaMemcpyAsync(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream_),
          "uploading a benchmark input");
    check(cudaStreamSynchronize(stream_), "uploading a benchmark input");
  }

  // Times launch(set) for set = 0, 1, .., sets - 1, 0, 1, ..: warm-up,
  // calibration, then timed batches of N calls (one graph each with --graph).
  measurement time(const std::function<void(int)>& launch, int sets) {
    int next = 0;
    const auto run = [&](int n) {
      for (int i = 0; i < n; ++i) {
        launch(next);
        next = next + 1 == sets ? 0 : next + 1;
      }
    };
    run(warmup_calls);
    check(cudaStreamSynchronize(stream_), "the warm-up calls");
    const double batch_ms = options_.short_run ? 5.0 : 25.0;
    double per_call_ms = 0;
    for (int k = 1;; k *= 4) {
      const double ms = elapsed_ms([&] { run(k); });
      if (ms >= 1.0 || k >= 1024) {
        per_call_ms = ms / k;
        break;
      }
    }
    int n = int(std::clamp(std::ceil(batch_ms / std::max(per_call_ms, 1e-4)), 2.0, double(max_calls)));
    measurement m;
    m.batches = options_.short_run ? 3 : 5;
    std::vector<double> per_call;
    if (options_.graph) {
      n = std::max(n, std::min(sets, max_calls));  // a replay visits every copy, so L2 never holds the batch
      cu::step_graph graph(stream_);
      graph.capture([&] { run(n); });
      graph.replay();
      check(cudaStreamSynchronize(stream_), "the warm-up graph replay");
      for (int b = 0; b < m.batches; ++b) per_call.push_back(elapsed_ms([&] { graph.replay(); }) * 1e3 / n);
    } else {
      for (int b = 0; b < m.batches; ++b) per_call.push_back(elapsed_ms([&] { run(n); }) * 1e3 / n);
    }
    std::sort(per_call.begin(), per_call.end());
    m.calls = n;
    m.best_us = per_call.front();
    m.median_us = per_call[per_call.size() / 2];
    return m;
  }

  // The copy and GEMM ceilings; call before add().
  void measure_ceilings() {
    {
      layout l;
      const int source = l.shared(gib), target = l.shared(gib);
      place(l);
      const auto copy = [&] {
        check(cudaMemcpyAsync(l.at<std::byte>(target), l.at<std::byte>(source), gib, cudaMemcpyDeviceToDevice, stream_),
              "copying 1 GiB device to device");
      };
      copy();
      double best_ms = 1e30;
      for (int i = 0; i < 5; ++i) best_ms = std::min(best_ms, elapsed_ms(copy));
      copy_gbps_ = 2.0 * double(gib) / (best_ms * 1e6);
    }
    const std::vector<std::int64_t> sizes = options_.short_run ? std::vector<std::int64_t>{8192}
                                                               : std::vector<std::int64_t>{4096, 8192};
    for (const std::int64_t n : sizes) {
      layout l;
      const std::size_t bytes = std::size_t(n * n) * sizeof(bfloat16);
      const int x = l.rotated(bytes), w = l.rotated(bytes), y = l.rotated(bytes);
      place(l);
      fill_uniform(l.at<bfloat16>(x), l.span<bfloat16>(x), -1.0f, 1.0f, stream_);
      fill_uniform(l.at<bfloat16>(w), l.span<bfloat16>(w), -1.0f, 1.0f, stream_);
      const std::string what = concat("the cuBLASLt ceiling GEMM ", n, "^3");
      const measurement m = time(
          [&](int s) {
            check(gemm_.matmul_nt(l.at<const bfloat16>(x, s), n, n, l.at<const bfloat16>(w, s), n,
                                  l.at<bfloat16>(y, s), false, stream_),
                  what);
          },
          l.sets());
      const double tflops = 2.0 * double(n) * double(n) * double(n) / (m.best_us * 1e6);
      gemm_shapes_.push_back({{"shape", concat(n, "^3 bf16")}, {"best_us", m.best_us}, {"tflop_per_s", tflops}});
      if (tflops > gemm_tflops_) {
        gemm_tflops_ = tflops;
        gemm_shape_ = concat(n, "^3");
      }
    }
  }

  void print_header() const {
    std::printf("bench_cuda_kernels: %s (sm_%d%d, %d SMs, L2 %.0f MiB, %.1f GiB), %s launches, inputs rotated over "
                ">= %zu MiB%s\n",
                prop_.name, prop_.major, prop_.minor, prop_.multiProcessorCount, double(prop_.l2CacheSize) / double(mib),
                double(prop_.totalGlobalMem) / double(gib), options_.graph ? "graph-replayed" : "eager",
                rotate_bytes_ / mib, options_.short_run ? ", --short" : "");
    std::printf("ceiling copy  %7.0f GB/s     cudaMemcpyAsync device to device, 1 GiB, read + write bytes, best of 5\n",
                copy_gbps_);
    std::printf("ceiling gemm  %7.1f TFLOP/s  bf16 %s, cuBLASLt peak measured here (unmask::cuda::gemm_engine), "
                "not the datasheet number\n",
                gemm_tflops_, gemm_shape_.c_str());
    std::printf("%-12s %-40s %-8s %10s %8s %6s %8s %6s %5s\n", "kernel", "shape", "type", "us/call", "GB/s", "%copy",
                "TFLOP/s", "%gemm", "sets");
    std::fflush(stdout);
  }

  void add(row r) {
    char gbps[32] = "-", copy[32] = "-", tflops[32] = "-", gemm[32] = "-";
    if (r.bytes > 0) {
      std::snprintf(gbps, sizeof gbps, "%.0f", r.gbps());
      std::snprintf(copy, sizeof copy, "%.0f%%", 100.0 * r.gbps() / copy_gbps_);
    }
    if (r.flops > 0) {
      std::snprintf(tflops, sizeof tflops, "%.1f", r.tflops());
      std::snprintf(gemm, sizeof gemm, "%.0f%%", 100.0 * r.tflops() / gemm_tflops_);
    }
    std::printf("%-12s %-40s %-8s %10.2f %8s %6s %8s %6s %5d\n", r.kernel.c_str(), r.shape.c_str(), r.type.c_str(),
                r.time.median_us, gbps, copy, tflops, gemm, r.sets);
    std::fflush(stdout);
    rows_.push_back(std::move(r));
  }

  nlohmann::json json() const {
    using nlohmann::json;
    json rows = json::array();
    for (const row& r : rows_) {
      json j = {{"kernel", r.kernel}, {"shape", r.shape}, {"type", r.type},
                {"us_per_call", r.time.median_us}, {"us_per_call_best", r.time.best_us},
                {"calls_per_batch", r.time.calls}, {"batches", r.time.batches}, {"sets", r.sets}};
      j["bytes"] = r.bytes > 0 ? json(r.bytes) : json();
      j["gb_per_s"] = r.bytes > 0 ? json(r.gbps()) : json();
      j["copy_fraction"] = r.bytes > 0 ? json(r.gbps() / copy_gbps_) : json();
      j["flops"] = r.flops > 0 ? json(r.flops) : json();
      j["tflop_per_s"] = r.flops > 0 ? json(r.tflops()) : json();
      j["gemm_fraction"] = r.flops > 0 ? json(r.tflops() / gemm_tflops_) : json();
      rows.push_back(std::move(j));
    }
    return {
        {"device",
         {{"name", prop_.name}, {"compute_capability", concat(prop_.major, ".", prop_.minor)},
          {"sms", prop_.multiProcessorCount}, {"l2_bytes", prop_.l2CacheSize}, {"memory_bytes", prop_.totalGlobalMem}}},
        {"mode", options_.short_run ? "short" : "full"},
        {"launch", options_.graph ? "graph" : "eager"},
        {"rotate_bytes", rotate_bytes_},
        {"ceilings",
         {{"copy_gb_per_s", copy_gbps_},
          {"copy_note", "cudaMemcpyAsync device to device of 1 GiB, read + write bytes, best of 5"},
          {"gemm_tflop_per_s", gemm_tflops_},
          {"gemm_note", concat("cuBLASLt peak measured here (bf16 ", gemm_shape_,
                               ", unmask::cuda::gemm_engine, best batch), not the datasheet number")},
          {"gemm_shapes", gemm_shapes_}}},
        {"rows", rows},
    };
  }

 private:
  template <class Work>
  double elapsed_ms(Work&& work) {
    check(cudaEventRecord(start_, stream_), "recording a timing event");
    work();
    check(cudaEventRecord(stop_, stream_), "recording a timing event");
    check(cudaEventSynchronize(stop_), "waiting for the timed calls");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start_, stop_), "reading a timing event");
    return double(ms);
  }

  options options_;
  cudaDeviceProp prop_;
  std::size_t rotate_bytes_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  cu::device_buffer<std::byte> arena_{0, "the benchmark buffers"};
  cu::gemm_engine gemm_;
  double copy_gbps_ = 0, gemm_tflops_ = 0;
  std::string gemm_shape_;
  nlohmann::json gemm_shapes_ = nlohmann::json::array();
  std::vector<row> rows_;
};

template <class T>
std::size_t bytes_of(std::int64_t count) {
  return std::size_t(count) * sizeof(T);
}

// ---- the kernels -------------------------------------------------------------

// The fused vocabulary pass over rows 0..rows-1 of a (rows, vocab) block of
// logits (uniform in [-8, 8)), max-prob confidence, the mask id excluded;
// sampled rows draw Gumbel noise per element (temperature 1). Bytes: the
// logits, read once (the 8 bytes a row written are left out).
template <class T>
void bench_vocab_pass(bench& b, const char* model, std::int64_t vocab, std::int32_t mask_id, std::int32_t rows,
                      bool sampled) {
  const std::string shape = concat(model, " V=", vocab, " rows=", rows, sampled ? " sampled T=1" : " greedy");
  if (!b.wanted("vocab_pass", shape)) return;
  cu::vocab_pass_options options;
  options.sampling.temperature = sampled ? 1.0f : 0.0f;
  options.metric = unmask::confidence_metric::max_prob;
  options.excluded_token = mask_id;
  options.rng.seed = 20240501;
  const std::size_t workspace_bytes = cu::vocab_pass_workspace_bytes(rows, vocab);
  layout l;
  const int logits = l.rotated(bytes_of<T>(rows * vocab));
  const int list = l.shared(bytes_of<std::int32_t>(rows)), sites = l.shared(bytes_of<unmask::draw_site>(rows));
  const int tokens = l.shared(bytes_of<std::int32_t>(rows)), confidence = l.shared(bytes_of<float>(rows));
  const int workspace = l.shared(workspace_bytes);
  b.place(l);
  fill_uniform(l.at<T>(logits), l.span<T>(logits), -8.0f, 8.0f, b.stream());
  fill_pattern(l.at<std::int32_t>(list), std::size_t(rows), std::size_t(rows), std::size_t(rows), 0, b.stream());
  std::vector<unmask::draw_site> host_sites(static_cast<std::size_t>(rows));
  for (std::size_t i = 0; i < host_sites.size(); ++i) host_sites[i] = {0, 0, std::uint32_t(i)};
  b.upload(l.at<unmask::draw_site>(sites), host_sites);
  const std::string what = concat("vocab_pass (", shape, " ", type_name<T>(), ")");
  const measurement m = b.time(
      [&](int s) {
        check(cu::vocab_pass(l.at<const T>(logits, s), rows, vocab, l.at<const std::int32_t>(list), rows,
                             sampled ? l.at<const unmask::draw_site>(sites) : nullptr, options,
                             l.at<std::int32_t>(tokens), l.at<float>(confidence), l.at<void>(workspace),
                             workspace_bytes, b.stream()),
              what);
      },
      l.sets());
  b.add({"vocab_pass", shape, type_name<T>(), m, l.sets(), double(bytes_of<T>(rows * vocab)), 0});
}

// Greedy argmax per row (autoregressive decoding), the mask id excluded.
// Bytes: the logits read once, the tokens written.
template <class T>
void bench_argmax(bench& b, const char* model, std::int64_t vocab, std::int32_t mask_id, std::int64_t rows) {
  const std::string shape = concat(model, " V=", vocab, " rows=", rows);
  if (!b.wanted("argmax", shape)) return;
  layout l;
  const int logits = l.rotated(bytes_of<T>(rows * vocab)), tokens = l.shared(bytes_of<std::int32_t>(rows));
  b.place(l);
  fill_uniform(l.at<T>(logits), l.span<T>(logits), -8.0f, 8.0f, b.stream());
  const std::string what = concat("argmax (", shape, ")");
  const measurement m = b.time(
      [&](int s) {
        check(cu::argmax(l.at<const T>(logits, s), rows, vocab, mask_id, l.at<std::int32_t>(tokens), b.stream()),
              what);
      },
      l.sets());
  b.add({"argmax", shape, type_name<T>(), m, l.sets(),
         double(bytes_of<T>(rows * vocab) + bytes_of<std::int32_t>(rows)), 0});
}

// RMSNorm of (rows, 4096) bf16 with a bf16 weight. Bytes: x read and out
// written once (the kernel's second pass re-reads x from L1/L2) plus the
// weight once; add_rmsnorm also reads the residual and writes x + residual
// back: 2 (4) * rows * dim * 2 + dim * 2.
void bench_rmsnorm(bench& b, std::int64_t rows, bool fused) {
  const std::string kernel = fused ? "add_rmsnorm" : "rmsnorm";
  const std::string shape = concat("rows=", rows, " dim=", d_model);
  if (!b.wanted(kernel, shape)) return;
  layout l;
  const std::size_t matrix = bytes_of<bfloat16>(rows * d_model);
  const int x = l.rotated(matrix), out = l.rotated(matrix), weight = l.shared(bytes_of<bfloat16>(d_model));
  const int residual = fused ? l.rotated(matrix) : -1;
  b.place(l);
  fill_uniform(l.at<bfloat16>(x), l.span<bfloat16>(x), -1.0f, 1.0f, b.stream());
  fill_uniform(l.at<bfloat16>(weight), l.span<bfloat16>(weight), 0.5f, 1.5f, b.stream());
  if (fused) fill_uniform(l.at<bfloat16>(residual), l.span<bfloat16>(residual), -0.01f, 0.01f, b.stream());
  const std::string what = concat(kernel, " (", shape, ")");
  const measurement m = b.time(
      [&](int s) {
        if (fused)
          check(cu::add_rmsnorm(l.at<bfloat16>(x, s), l.at<const bfloat16>(residual, s), l.at<const bfloat16>(weight),
                                rows, d_model, rms_eps, l.at<bfloat16>(out, s), b.stream()),
                what);
        else
          check(cu::rmsnorm(l.at<const bfloat16>(x, s), l.at<const bfloat16>(weight), rows, d_model, rms_eps,
                            l.at<bfloat16>(out, s), b.stream()),
                what);
      },
      l.sets());
  const double bytes = double((fused ? 4 : 2) * matrix + bytes_of<bfloat16>(d_model));
  b.add({kernel, shape, "bf16", m, l.sets(), bytes, 0});
}

// Rotary embedding in place on (rows, 32, 128) bf16, positions 0..rows-1.
// Bytes: x read and written, the positions read.
void bench_rope(bench& b, std::int64_t rows) {
  const std::string shape = concat("rows=", rows, " heads=", n_heads, " head_dim=", head_dim);
  if (!b.wanted("rope", shape)) return;
  layout l;
  const std::size_t matrix = bytes_of<bfloat16>(rows * n_heads * head_dim);
  const int x = l.rotated(matrix), positions = l.shared(bytes_of<std::int32_t>(rows));
  b.place(l);
  fill_uniform(l.at<bfloat16>(x), l.span<bfloat16>(x), -1.0f, 1.0f, b.stream());
  fill_pattern(l.at<std::int32_t>(positions), std::size_t(rows), std::size_t(rows), std::size_t(rows), 0, b.stream());
  const std::string what = concat("rope (", shape, ")");
  const measurement m = b.time(
      [&](int s) {
        check(cu::rope(l.at<bfloat16>(x, s), rows, n_heads, head_dim, l.at<const std::int32_t>(positions), rope_theta,
                       b.stream()),
              what);
      },
      l.sets());
  b.add({"rope", shape, "bf16", m, l.sets(), double(2 * matrix + bytes_of<std::int32_t>(rows)), 0});
}

// silu(gate) * up over rows * 12288 bf16 values. Bytes: gate and up read, out written.
void bench_swiglu(bench& b, std::int64_t rows) {
  const std::int64_t n = rows * mlp_hidden;
  const std::string shape = concat("rows=", rows, " n=", n);
  if (!b.wanted("swiglu", shape)) return;
  layout l;
  const std::size_t bytes = bytes_of<bfloat16>(n);
  const int gate = l.rotated(bytes), up = l.rotated(bytes), out = l.rotated(bytes);
  b.place(l);
  fill_uniform(l.at<bfloat16>(gate), l.span<bfloat16>(gate), -4.0f, 4.0f, b.stream());
  fill_uniform(l.at<bfloat16>(up), l.span<bfloat16>(up), -1.0f, 1.0f, b.stream());
  const std::string what = concat("swiglu (", shape, ")");
  const measurement m = b.time(
      [&](int s) {
        check(cu::swiglu(l.at<const bfloat16>(gate, s), l.at<const bfloat16>(up, s), n, l.at<bfloat16>(out, s),
                         b.stream()),
              what);
      },
      l.sets());
  b.add({"swiglu", shape, "bf16", m, l.sets(), double(3 * bytes), 0});
}

// Gathers `rows` random rows of a (126464, 4096) bf16 table (1 GB, shared;
// each copy has its own random tokens). Bytes: the gathered rows read, out
// written, the token ids read.
void bench_embedding(bench& b, std::int64_t rows) {
  const std::string shape = concat("rows=", rows, " dim=", d_model, " V=", llada_vocab);
  if (!b.wanted("embedding", shape)) return;
  layout l;
  const std::size_t matrix = bytes_of<bfloat16>(rows * d_model);
  const int table = l.shared(bytes_of<bfloat16>(llada_vocab * d_model));
  const int tokens = l.rotated(bytes_of<std::int32_t>(rows)), out = l.rotated(matrix);
  b.place(l);
  fill_uniform(l.at<bfloat16>(table), l.span<bfloat16>(table), -1.0f, 1.0f, b.stream());
  fill_integers(l.at<std::int32_t>(tokens), l.span<std::int32_t>(tokens), std::uint32_t(llada_vocab), b.stream());
  const std::string what = concat("embedding (", shape, ")");
  const measurement m = b.time(
      [&](int s) {
        check(cu::embedding(l.at<const std::int32_t>(tokens, s), rows, l.at<const bfloat16>(table), llada_vocab,
                            d_model, l.at<bfloat16>(out, s), b.stream()),
              what);
      },
      l.sets());
  b.add({"embedding", shape, "bf16", m, l.sets(), double(2 * matrix + bytes_of<std::int32_t>(rows)), 0});
}

// Attention, 32 heads (32 K/V heads) of 128, bf16. q_len query rows per
// sequence at positions q_offset.., against kv_len keys. FLOPs: 4 * head_dim
// per (query row, visible key, head), q k^T and p v at 2 per multiply-add,
// summed over the rows' visible keys (mask.key_end), times batch. Bytes: q,
// k, v and out once each. Two rows per shape: "attention", the kernel
// cu::attention picks (tensor cores on sm_80+, key splits for few queries,
// with the workspace the backend gives it), and "attention fp32 units", the
// reference kernel it replaced (cu::attention_reference), for the ratio.
void bench_attention(bench& b, const char* what_kind, std::int64_t batch, std::int64_t q_len, std::int64_t kv_len,
                     std::int32_t q_offset, unmask::attention_mask mask, bool extents, bool reference) {
  const std::string shape = concat(what_kind, " batch=", batch);
  const char* kernel = reference ? "attention fp32 units" : "attention";
  if (!b.wanted(kernel, shape)) return;
  unmask::attention_shape s;
  s.batch = batch;
  s.q_len = q_len;
  s.kv_capacity = kv_len;
  s.heads = n_heads;
  s.kv_heads = n_heads;
  s.head_dim = head_dim;
  layout l;
  const std::size_t q_bytes = bytes_of<bfloat16>(batch * q_len * n_heads * head_dim);
  const std::size_t kv_bytes = bytes_of<bfloat16>(batch * kv_len * s.kv_heads * head_dim);
  const int q = l.rotated(q_bytes), k = l.rotated(kv_bytes), v = l.rotated(kv_bytes), out = l.rotated(q_bytes);
  const int offsets = l.shared(bytes_of<std::int32_t>(batch)), lengths = l.shared(bytes_of<std::int32_t>(batch));
  const std::size_t workspace_bytes = cu::attention_workspace_bytes<bfloat16>(s);
  const int workspace = l.shared(std::max<std::size_t>(workspace_bytes, 16));
  b.place(l);
  for (const int id : {q, k, v}) fill_uniform(l.at<bfloat16>(id), l.span<bfloat16>(id), -1.0f, 1.0f, b.stream());
  unmask::attention_extents e;
  if (extents) {
    fill_pattern(l.at<std::int32_t>(offsets), std::size_t(batch), 1, 1, q_offset, b.stream());
    fill_pattern(l.at<std::int32_t>(lengths), std::size_t(batch), 1, 1, std::int32_t(kv_len), b.stream());
    e.q_offsets = l.at<const std::int32_t>(offsets);
    e.kv_lengths = l.at<const std::int32_t>(lengths);
  }
  double visible = 0;  // (query row, key) pairs of one sequence and head
  for (std::int64_t i = 0; i < q_len; ++i) visible += double(mask.key_end((extents ? q_offset : 0) + i, kv_len));
  const std::string what = concat("attention (", shape, ")");
  const measurement m = b.time(
      [&](int set) {
        const bfloat16 *q_at = l.at<const bfloat16>(q, set), *k_at = l.at<const bfloat16>(k, set),
                       *v_at = l.at<const bfloat16>(v, set);
        bfloat16* out_at = l.at<bfloat16>(out, set);
        check(reference ? cu::attention_reference(q_at, k_at, v_at, out_at, s, e, mask, b.stream())
                        : cu::attention(q_at, k_at, v_at, out_at, s, e, mask, l.at<unsigned char>(workspace),
                                        workspace_bytes, b.stream()),
              what);
      },
      l.sets());
  const double flops = 4.0 * double(head_dim) * double(n_heads) * visible * double(batch);
  b.add({kernel, shape, "bf16", m, l.sets(), double(2 * q_bytes + 2 * kv_bytes), flops});
}

// y (rows, n) = x (rows, k) w^T through the cuBLASLt engine, bf16 inputs,
// Y output, x and w uniform in [-1, 1). FLOPs: 2 rows n k. Bytes, for rows
// <= 32 only (the memory-bound GEMV regime): the weight, n k bf16; x and y
// add under 2% there and are left out.
template <class Y>
void bench_gemm(bench& b, const char* name, std::int64_t rows, std::int64_t k, std::int64_t n) {
  const std::string shape = concat(name, " rows=", rows, " ", k, "->", n);
  if (!b.wanted("gemm", shape)) return;
  layout l;
  const std::size_t weight_bytes = bytes_of<bfloat16>(n * k);
  const int x = l.rotated(bytes_of<bfloat16>(rows * k)), w = l.rotated(weight_bytes), y = l.rotated(bytes_of<Y>(rows * n));
  b.place(l);
  fill_uniform(l.at<bfloat16>(x), l.span<bfloat16>(x), -1.0f, 1.0f, b.stream());
  fill_uniform(l.at<bfloat16>(w), l.span<bfloat16>(w), -1.0f, 1.0f, b.stream());
  const std::string what = concat("gemm (", shape, ")");
  const measurement m = b.time(
      [&](int s) {
        check(b.gemm().matmul_nt(l.at<const bfloat16>(x, s), rows, k, l.at<const bfloat16>(w, s), n, l.at<Y>(y, s),
                                 false, b.stream()),
              what);
      },
      l.sets());
  const std::string type = std::is_same_v<Y, float> ? "bf16>f32" : "bf16";
  b.add({"gemm", shape, type, m, l.sets(), rows <= 32 ? double(weight_bytes) : 0.0,
         2.0 * double(rows) * double(n) * double(k)});
}

// Commit selection for 64 sequences x 256 candidates (positions 768..1023 of
// a 1024-token canvas, confidences uniform in [0, 1)); top-k with LLaDA's
// even schedule over 32 steps commits 8 a sequence, the threshold 0.9 about
// 10%, the stochastic rule (Dream's alg_temp) adds Gumbel noise to every key.
// Bytes: positions, tokens and confidences read (12 bytes a candidate), the
// sequences read and committed written; the canvas writes (4 bytes a
// committed token) are left out.
void bench_selection(bench& b, const char* rule_name, unmask::selection_rule rule,
                     unmask::count_schedule_kind schedule) {
  constexpr std::int32_t sequences = 64, candidates = 256, canvas_length = 1024;
  const std::string shape = concat(rule_name, " ", sequences, " seqs x ", candidates, " candidates");
  if (!b.wanted("selection", shape)) return;
  cu::selection_options options;
  options.rule = rule;
  options.schedule.kind = schedule;
  options.metric = unmask::confidence_metric::max_prob;
  options.rng.seed = 20240501;
  const std::int64_t total = std::int64_t(sequences) * candidates;
  layout l;
  const int positions = l.rotated(bytes_of<std::int32_t>(total)), tokens = l.rotated(bytes_of<std::int32_t>(total));
  const int confidence = l.rotated(bytes_of<float>(total));
  const int canvas = l.rotated(bytes_of<std::int32_t>(std::int64_t(sequences) * canvas_length));
  const int seqs = l.shared(bytes_of<cu::selection_sequence>(sequences));
  const int committed = l.shared(bytes_of<std::int32_t>(sequences));
  b.place(l);
  fill_pattern(l.at<std::int32_t>(positions), l.span<std::int32_t>(positions), l.stride<std::int32_t>(positions),
               std::size_t(candidates), canvas_length - candidates, b.stream());
  fill_integers(l.at<std::int32_t>(tokens), l.span<std::int32_t>(tokens), std::uint32_t(llada_vocab), b.stream());
  fill_uniform(l.at<float>(confidence), l.span<float>(confidence), 0.0f, 1.0f, b.stream());
  std::vector<cu::selection_sequence> host(static_cast<std::size_t>(sequences));
  for (std::int32_t s = 0; s < sequences; ++s) {
    cu::selection_sequence& q = host[std::size_t(s)];
    q.candidate_begin = s * candidates;
    q.candidate_count = candidates;
    q.canvas_offset = std::int64_t(s) * canvas_length;
    q.id = std::uint32_t(s);
    q.rng_step = 0;
    q.block_step = 0;
    q.steps = 32;
    q.initial_masks = candidates;
  }
  b.upload(l.at<cu::selection_sequence>(seqs), host);
  const std::string what = concat("select_and_commit (", shape, ")");
  const measurement m = b.time(
      [&](int s) {
        check(cu::select_and_commit(l.at<const cu::selection_sequence>(seqs), sequences, candidates,
                                    l.at<const std::int32_t>(positions, s), l.at<const std::int32_t>(tokens, s),
                                    l.at<const float>(confidence, s), options, l.at<std::int32_t>(canvas, s),
                                    l.at<std::int32_t>(committed), b.stream()),
              what);
      },
      l.sets());
  const double bytes = double(total) * 12.0 + double(sequences) * double(sizeof(cu::selection_sequence) + 4);
  b.add({"selection", shape, "f32", m, l.sets(), bytes, 0});
}

void run_all(bench& b) {
  const bool full = !b.short_run();
  using shapes = std::vector<std::int64_t>;
  struct model {
    const char* name;
    std::int64_t vocab;
    std::int32_t mask_id;
  };
  const std::vector<model> models = full ? std::vector<model>{{"LLaDA", llada_vocab, llada_mask_id},
                                                              {"Dream", dream_vocab, dream_mask_id}}
                                         : std::vector<model>{{"LLaDA", llada_vocab, llada_mask_id}};
  const shapes vocab_rows = full ? shapes{1, 32, 256} : shapes{1, 256};
  for (const model& md : models)
    for (const bool sampled : {false, true})
      for (const std::int64_t r : vocab_rows) {
        bench_vocab_pass<bfloat16>(b, md.name, md.vocab, md.mask_id, std::int32_t(r), sampled);
        bench_vocab_pass<float>(b, md.name, md.vocab, md.mask_id, std::int32_t(r), sampled);
      }
  for (const model& md : models)
    for (const std::int64_t r : vocab_rows) {
      bench_argmax<bfloat16>(b, md.name, md.vocab, md.mask_id, r);
      if (full) bench_argmax<float>(b, md.name, md.vocab, md.mask_id, r);
    }
  for (const std::int64_t r : full ? shapes{32, 1024, 4096} : shapes{32, 4096}) {
    bench_rmsnorm(b, r, false);
    bench_rmsnorm(b, r, true);
  }
  bench_rope(b, 1024);
  for (const std::int64_t r : shapes{32, 1024}) bench_swiglu(b, r);
  bench_embedding(b, 1024);

  using unmask::attention_mask;
  for (const bool reference : {false, true}) {
    bench_attention(b, "full 512 canvas", 1, 512, 512, 0, attention_mask::full(), false, reference);
    bench_attention(b, "full 1024 canvas", 1, 1024, 1024, 0, attention_mask::full(), false, reference);
    if (full) bench_attention(b, "full 1024 canvas", 8, 1024, 1024, 0, attention_mask::full(), false, reference);
    bench_attention(b, "block 32 q x 1024 cached keys", 8, 32, 1024, 1024 - 32, attention_mask::full(), true,
                    reference);
    bench_attention(b, "causal 1024", 1, 1024, 1024, 0, attention_mask::causal(), false, reference);
    bench_attention(b, "decode 1 q x 4096 cached keys", 1, 1, 4096, 4095, attention_mask::causal(), true, reference);
    bench_attention(b, "decode 1 q x 4096 cached keys", 8, 1, 4096, 4095, attention_mask::causal(), true, reference);
  }

  for (const std::int64_t r : full ? shapes{1, 32, 256, 1024} : shapes{1, 32, 1024}) {
    bench_gemm<bfloat16>(b, "qkvo", r, d_model, d_model);
    bench_gemm<bfloat16>(b, "up/gate", r, d_model, mlp_hidden);
    bench_gemm<bfloat16>(b, "down", r, mlp_hidden, d_model);
    bench_gemm<float>(b, "lm head", r, d_model, llada_vocab);
  }

  bench_selection(b, "top_k", unmask::selection_rule::top_k(), unmask::count_schedule_kind::llada_even);
  if (full) {
    bench_selection(b, "threshold 0.9", unmask::selection_rule::fast_dllm_threshold(0.9f),
                    unmask::count_schedule_kind::llada_even);
    bench_selection(b, "stochastic", unmask::selection_rule::dream_alg_temp(1.0f), unmask::count_schedule_kind::dream);
  }
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  try {
    if (!parse(argc, argv, o)) return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_kernels: %s\n", e.what());
    return 2;
  }
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "bench_cuda_kernels: no CUDA device (%s)\n",
                 status != cudaSuccess ? cudaGetErrorString(status) : "none found");
    return 1;
  }
  try {
    if (o.device >= devices)
      throw std::invalid_argument(concat("--device ", o.device, ": only ", devices, " CUDA device(s)"));
    check(cudaSetDevice(o.device), concat("selecting CUDA device ", o.device));
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, o.device), "reading the device properties");
    bench b(o, prop);
    b.measure_ceilings();
    b.print_header();
    run_all(b);
    if (!o.json_path.empty()) {
      std::ofstream file(o.json_path);
      file << b.json().dump(2) << "\n";
      if (!file) throw std::runtime_error(concat("cannot write ", o.json_path));
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_kernels: %s\n", e.what());
    return 1;
  }
}
