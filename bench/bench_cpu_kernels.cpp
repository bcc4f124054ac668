// CPU kernel benchmarks, every figure against a ceiling measured in the same
// run (bench/ceilings.hpp): GEMMs against the fp32 FMA (or bf16 dot) peak of
// their instruction-set level and thread count, the one-row path against
// DRAM read bandwidth (weights rotate through copies far larger than the
// L3), attention against the FMA peak, the elementwise kernels against the
// L3-resident read bandwidth (their data lives there during a forward pass).
// Shapes: the projections of the ~1B preset (d_model 2048, 16 heads of 128,
// MLP 5632: Q/K/V fused 6144 x 2048, attn_out 2048 x 2048, gate/up fused
// 11264 x 2048, ff_out 2048 x 5632) and the tiny model's attention. Each
// runs on one thread and on every thread; `cpu/wall` is the process CPU time
// over wall time (near the thread count when nothing else competes for the
// cores). OpenBLAS's cblas_sgemm on fp32 weights is the peer where it is
// found.
//
//   bench_cpu_kernels [--benchmark_filter=...] [--benchmark_min_time=0.2] [--quick]
#include <benchmark/benchmark.h>

#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/ceilings.hpp"
#include "unmask/cpu/attention.hpp"
#include "unmask/cpu/choose.hpp"
#include "unmask/cpu/embedding.hpp"
#include "unmask/cpu/matmul.hpp"
#include "unmask/cpu/parallel.hpp"
#include "unmask/cpu/rmsnorm.hpp"
#include "unmask/cpu/rope.hpp"
#include "unmask/cpu/swiglu.hpp"

#if defined(UNMASK_BENCH_OPENBLAS)
#include <cblas.h>
#endif

namespace unmask {
namespace {

bench::ceilings g_ceilings;
int g_all_threads = 1;

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Times the loop's wall and process CPU time; sets cpu/wall.
struct cpu_timer {
  benchmark::State& state;
  double cpu0 = process_cpu_seconds();
  bench::clock_type::time_point wall0 = bench::clock_type::now();
  ~cpu_timer() {
    const double wall = bench::seconds_since(wall0), cpu = process_cpu_seconds() - cpu0;
    state.counters["cpu/wall"] = wall > 0 ? cpu / wall : 0;
  }
};

std::vector<bfloat16> random_bf16(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<bfloat16> v(n);
  for (auto& x : v) x = to_bfloat16(0.02f * normal(rng));
  return v;
}

std::vector<float> random_f32(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

// Copies that together exceed the L3 several times when the product is
// bandwidth-bound (few rows), so every call streams its weights from DRAM.
int copies_for(std::int64_t rows, std::size_t bytes) {
  if (rows > 8) return 1;
  const std::size_t target = std::size_t(192) << 20;
  return int(std::max<std::size_t>(1, (target + bytes - 1) / bytes));
}

struct gemm_shape {
  const char* name;
  std::int64_t n, k;
};
const gemm_shape shapes[] = {{"qkv", 6144, 2048}, {"attn_out", 2048, 2048}, {"gate_up", 11264, 2048}, {"ff_out", 2048, 5632}};

void set_threads(int threads) { cpu::set_thread_count(threads); }

void gemm_benchmark(benchmark::State& state, cpu::isa_level level, cpu::compute_mode mode, int threads, std::int64_t rows,
                    gemm_shape shape) {
  set_threads(threads);
  const std::vector<bfloat16> w = random_bf16(std::size_t(shape.n * shape.k), 1);
  const tensor_ref ref{w.data(), dtype::bf16, {shape.n, shape.k}, shape.name};
  const int copies = copies_for(rows, w.size() * 2);
  std::vector<std::unique_ptr<cpu::packed_matrix>> packed;
  for (int c = 0; c < copies; ++c)
    packed.push_back(std::make_unique<cpu::packed_matrix>(std::vector<const tensor_ref*>{&ref},
                                                          std::vector<std::int64_t>{shape.n}, cpu::layout_for(level, mode)));
  const std::vector<float> x = random_f32(std::size_t(rows * shape.k), 2);
  std::vector<float> y(std::size_t(rows * shape.n));
  std::size_t next = 0;
  {
    cpu_timer timer{state};
    for (auto _ : state) {
      cpu::gemm(level, x.data(), rows, *packed[next], y.data(), false);
      next = (next + 1) % packed.size();
      benchmark::DoNotOptimize(y.data());
    }
  }
  const double iterations = double(state.iterations());
  const double flops = 2.0 * double(rows * shape.n * shape.k), bytes = double(w.size() * 2);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * iterations / 1e9, benchmark::Counter::kIsRate);
  state.counters["GB/s"] = benchmark::Counter(bytes * iterations / 1e9, benchmark::Counter::kIsRate);
  // Ceilings: bf16 dot peak where vdpbf16ps runs, else the level's FMA peak.
  const bool native_bf16 = mode == cpu::compute_mode::bf16 && level == cpu::isa_level::avx512_bf16;
  const double peak = native_bf16 ? bench::bf16_peak_now(threads) : bench::fma_peak_now(cpu::isa_name(level), threads);
  state.counters["peak_gflops"] = peak;
  state.counters["dram_gbps"] = threads > 1 ? g_ceilings.dram_read.all : g_ceilings.dram_read.one;
  state.counters["copies"] = copies;
}

#if defined(UNMASK_BENCH_OPENBLAS)
void openblas_benchmark(benchmark::State& state, int threads, std::int64_t rows, gemm_shape shape) {
  openblas_set_num_threads(threads);
  const std::size_t size = std::size_t(shape.n * shape.k);
  const int copies = copies_for(rows, size * 4);
  std::vector<std::vector<float>> w;
  for (int c = 0; c < copies; ++c) {
    w.push_back(random_f32(size, 1));
    for (float& v : w.back()) v *= 0.02f;
  }
  const std::vector<float> x = random_f32(std::size_t(rows * shape.k), 2);
  std::vector<float> y(std::size_t(rows * shape.n));
  std::size_t next = 0;
  {
    cpu_timer timer{state};
    for (auto _ : state) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(shape.n), int(shape.k), 1.0f, x.data(),
                  int(shape.k), w[next].data(), int(shape.k), 0.0f, y.data(), int(shape.n));
      next = (next + 1) % w.size();
      benchmark::DoNotOptimize(y.data());
    }
  }
  const double iterations = double(state.iterations());
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * double(rows * shape.n * shape.k) * iterations / 1e9, benchmark::Counter::kIsRate);
  state.counters["GB/s"] = benchmark::Counter(double(size * 4) * iterations / 1e9, benchmark::Counter::kIsRate);
  state.counters["peak_gflops"] = bench::fma_peak_now(cpu::isa_name(cpu::detected_isa()), threads);
  state.counters["dram_gbps"] = threads > 1 ? g_ceilings.dram_read.all : g_ceilings.dram_read.one;
}
#endif

// q_len queries (1: one decoding step) against kv keys; FLOPs of the visible
// scores: 4 * visible pairs * head_dim (q k and p v).
void attention_benchmark(benchmark::State& state, cpu::isa_level level, int threads, std::int64_t q_len,
                         std::int64_t kv, std::int64_t heads, std::int64_t hd, attention_mask mask) {
  set_threads(threads);
  attention_shape s;
  s.batch = 1;
  s.q_len = q_len;
  s.kv_capacity = kv;
  s.heads = heads;
  s.kv_heads = heads;
  s.head_dim = hd;
  const std::vector<float> q = random_f32(std::size_t(q_len * heads * hd), 3), k = random_f32(std::size_t(kv * heads * hd), 4),
                           v = random_f32(std::size_t(kv * heads * hd), 5);
  std::vector<float> out(q.size());
  const std::int32_t offset = std::int32_t(kv - q_len);
  double pairs = 0;
  for (std::int64_t i = 0; i < q_len; ++i) pairs += double(mask.key_end(offset + i, kv));
  {
    cpu_timer timer{state};
    for (auto _ : state) {
      cpu::attention(q.data(), k.data(), v.data(), out.data(), s, {&offset, nullptr, nullptr}, mask, level);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(4.0 * pairs * double(heads * hd) * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["peak_gflops"] = bench::fma_peak_now(cpu::isa_name(level), threads);
}

// Bytes moved per call for the elementwise kernels; ceiling: L3-resident reads.
void elementwise_counters(benchmark::State& state, double bytes, double flops, int threads) {
  state.counters["GB/s"] = benchmark::Counter(bytes * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["l3_gbps"] = threads > 1 ? g_ceilings.l3_read.all : g_ceilings.l3_read.one;
}

void rmsnorm_benchmark(benchmark::State& state, cpu::isa_level level, int threads) {
  set_threads(threads);
  const std::int64_t rows = 256, dim = 2048;
  const std::vector<float> x = random_f32(std::size_t(rows * dim), 6);
  std::vector<float> out(x.size());
  const auto w = random_bf16(std::size_t(dim), 7);
  const tensor_ref weight{w.data(), dtype::bf16, {dim}, "w"};
  {
    cpu_timer timer{state};
    for (auto _ : state) {
      cpu::rmsnorm(x.data(), rows, dim, weight, 1e-5f, out.data(), level);
      benchmark::DoNotOptimize(out.data());
    }
  }
  elementwise_counters(state, double(rows * dim * 8), double(rows * dim * 4), threads);
}

void swiglu_benchmark(benchmark::State& state, cpu::isa_level level, int threads) {
  set_threads(threads);
  const std::int64_t n = 256 * 5632;
  const std::vector<float> gate = random_f32(std::size_t(n), 8), up = random_f32(std::size_t(n), 9);
  std::vector<float> out(static_cast<std::size_t>(n));
  {
    cpu_timer timer{state};
    for (auto _ : state) {
      cpu::swiglu(gate.data(), up.data(), n, out.data(), level);
      benchmark::DoNotOptimize(out.data());
    }
  }
  elementwise_counters(state, double(n) * 12, double(n) * 4, threads);
}

void rope_benchmark(benchmark::State& state, cpu::isa_level level, int threads) {
  set_threads(threads);
  const std::int64_t rows = 256, heads = 16, hd = 128;
  std::vector<float> x = random_f32(std::size_t(rows * heads * hd), 10);
  std::vector<std::int32_t> positions(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) positions[std::size_t(r)] = std::int32_t(r);
  const auto table = cpu::rope_table(rows, hd, 10000.0f);
  {
    cpu_timer timer{state};
    for (auto _ : state) {
      cpu::rope(x.data(), rows, heads, hd, positions.data(), table, level);
      benchmark::DoNotOptimize(x.data());
    }
  }
  const double elements = double(rows * heads * hd);
  elementwise_counters(state, elements * 8 + double(rows * hd * 4), elements * 3, threads);
}

void embedding_benchmark(benchmark::State& state, cpu::isa_level level, int threads) {
  set_threads(threads);
  const std::int64_t rows = 256, vocab = 32000, dim = 2048;
  const auto w = random_bf16(std::size_t(vocab * dim), 11);
  const tensor_ref wte{w.data(), dtype::bf16, {vocab, dim}, "wte"};
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) tokens[std::size_t(r)] = std::int32_t((r * 7919) % vocab);
  std::vector<float> out(std::size_t(rows * dim));
  {
    cpu_timer timer{state};
    for (auto _ : state) {
      cpu::embedding(tokens.data(), rows, wte, out.data(), level);
      benchmark::DoNotOptimize(out.data());
    }
  }
  elementwise_counters(state, double(rows * dim) * 6, 0.0, threads);
}

// The token choice of `rows` candidate rows of LLaDA's 126,464-token
// vocabulary (greedy, max_prob): built in, with LLaDA's logits_eos_inf and
// confidence_eos_eot_inf (an active logits processor), and with a confidence
// metric of one's own (log p). Ceiling: L3-resident reads of the rows.
struct log_probability_metric {
  float operator()(const vocab_stats& stats, float token_logit, const draw_site&, const counter_rng&) const {
    return token_logit - stats.log_sum_exp();
  }
};

template <class Rules>
void choose_benchmark(benchmark::State& state, cpu::isa_level level, int threads, Rules rules) {
  set_threads(threads);
  const std::int64_t rows = 32, vocab = 126464;
  const std::vector<float> logits = random_f32(std::size_t(rows * vocab), 12);
  std::vector<draw_site> sites;
  for (std::int64_t r = 0; r < rows; ++r) sites.push_back({0, 0, std::uint32_t(r)});
  std::vector<token_choice> out(static_cast<std::size_t>(rows));
  {
    cpu_timer timer{state};
    for (auto _ : state) {
      cpu::choose_tokens(logits.data(), rows, vocab, {}, confidence_metric::max_prob, 126336, counter_rng{},
                         sites.data(), out.data(), level, rules);
      benchmark::DoNotOptimize(out.data());
    }
  }
  elementwise_counters(state, double(rows * vocab * 4), 0.0, threads);
}

std::vector<cpu::isa_level> levels() {
  std::vector<cpu::isa_level> out;
  for (cpu::isa_level l : {cpu::isa_level::portable, cpu::isa_level::avx2, cpu::isa_level::avx512, cpu::isa_level::avx512_bf16})
    if (l <= cpu::detected_isa()) out.push_back(l);
  return out;
}

void register_all(bool quick) {
  const cpu::isa_level best = cpu::detected_isa();
  // The fp32 level that FMA peaks describe (avx512_bf16 runs avx512's fp32 kernels).
  const cpu::isa_level fp32_best = best == cpu::isa_level::avx512_bf16 ? cpu::isa_level::avx512 : best;
  std::vector<int> thread_counts = {1};
  if (g_all_threads > 1) thread_counts.push_back(g_all_threads);
  const std::vector<std::int64_t> row_counts = quick ? std::vector<std::int64_t>{1, 64} : std::vector<std::int64_t>{1, 4, 32, 64, 128, 256};
  auto name = [](const std::string& kind, const std::string& level, const std::string& mode, int threads,
                 std::int64_t rows, const std::string& shape) {
    return kind + "/" + level + "/" + mode + "/threads:" + std::to_string(threads) + "/rows:" + std::to_string(rows) + "/" + shape;
  };
  for (int t : thread_counts)
    for (std::int64_t rows : row_counts)
      for (const gemm_shape& shape : shapes)
        benchmark::RegisterBenchmark(name("gemm", cpu::isa_name(fp32_best), "f32", t, rows, shape.name).c_str(),
                                     gemm_benchmark, fp32_best, cpu::compute_mode::f32, t, rows, shape)
            ->Unit(benchmark::kMillisecond)->UseRealTime();
  // The bf16 mode, and the lower levels on the square shape.
  for (int t : thread_counts)
    for (std::int64_t rows : row_counts) {
      benchmark::RegisterBenchmark(name("gemm", cpu::isa_name(best), "bf16", t, rows, "attn_out").c_str(), gemm_benchmark,
                                   best, cpu::compute_mode::bf16, t, rows, shapes[1])
          ->Unit(benchmark::kMillisecond)->UseRealTime();
      for (cpu::isa_level l : levels())
        if (l < fp32_best)
          benchmark::RegisterBenchmark(name("gemm", cpu::isa_name(l), "f32", t, rows, "attn_out").c_str(), gemm_benchmark,
                                       l, cpu::compute_mode::f32, t, rows, shapes[1])
              ->Unit(benchmark::kMillisecond)->UseRealTime();
    }
  struct attention_case {
    const char* name;
    std::int64_t q, kv, heads, hd;
    attention_mask mask;
  };
  const attention_case cases[] = {{"1b_full_256", 256, 256, 16, 128, attention_mask::full()},
                                  {"1b_full_512", 512, 512, 16, 128, attention_mask::full()},
                                  {"1b_block32_512", 512, 512, 16, 128, attention_mask::block_causal(32)},
                                  {"1b_decode_512", 1, 512, 16, 128, attention_mask::causal()},
                                  {"tiny_full_276", 276, 276, 4, 64, attention_mask::full()},
                                  {"tiny_decode_276", 1, 276, 4, 64, attention_mask::causal()}};
  for (int t : thread_counts)
    for (const attention_case& c : cases)
      for (cpu::isa_level l : levels()) {
        if (l == cpu::isa_level::avx512_bf16) continue;
        const std::string n = std::string("attention/") + cpu::isa_name(l) + "/threads:" + std::to_string(t) + "/" + c.name;
        benchmark::RegisterBenchmark(n.c_str(), attention_benchmark, l, t, c.q, c.kv, c.heads, c.hd, c.mask)
            ->Unit(benchmark::kMillisecond)->UseRealTime();
      }
  for (int t : thread_counts) {
    const std::string suffix = std::string("/") + cpu::isa_name(fp32_best) + "/threads:" + std::to_string(t);
    benchmark::RegisterBenchmark(("rmsnorm" + suffix + "/256x2048").c_str(), rmsnorm_benchmark, fp32_best, t)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark(("swiglu" + suffix + "/256x5632").c_str(), swiglu_benchmark, fp32_best, t)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark(("rope" + suffix + "/256x16x128").c_str(), rope_benchmark, fp32_best, t)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark(("embedding" + suffix + "/256x2048").c_str(), embedding_benchmark, fp32_best, t)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark(("choose" + suffix + "/builtin/32x126464").c_str(),
                                 choose_benchmark<no_logits_processor>, fp32_best, t, no_logits_processor{})
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark(("choose" + suffix + "/llada_eos_eot_inf/32x126464").c_str(),
                                 choose_benchmark<token_ban_processor>, fp32_best, t,
                                 token_ban_processor::llada(true, true, 126081, 126348))
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark(("choose" + suffix + "/log_p_metric/32x126464").c_str(),
                                 choose_benchmark<token_rules<no_logits_processor, log_probability_metric>>, fp32_best,
                                 t, token_rules<no_logits_processor, log_probability_metric>{})
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
  }
#if defined(UNMASK_BENCH_OPENBLAS)
  // The peer last: OpenBLAS's threads spin after each call (bench.sh sets
  // OPENBLAS_THREAD_TIMEOUT to shorten it) and would take cores from
  // benchmarks that ran after them.
  for (int t : thread_counts)
    for (std::int64_t rows : row_counts)
      for (const gemm_shape& shape : shapes)
        benchmark::RegisterBenchmark(name("openblas", "sgemm", "f32", t, rows, shape.name).c_str(), openblas_benchmark, t,
                                     rows, shape)
            ->Unit(benchmark::kMillisecond)->UseRealTime();
#endif
}

}  // namespace
}  // namespace unmask

int main(int argc, char** argv) {
  bool quick = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--quick") quick = true;
    else args.push_back(argv[i]);
  }
  int n = int(args.size());
  unmask::g_all_threads = unmask::cpu::thread_count();
  std::fprintf(stderr, "measuring ceilings on %d threads...\n", unmask::g_all_threads);
  unmask::g_ceilings = unmask::bench::measure_ceilings(quick);
  const unmask::bench::ceilings& c = unmask::g_ceilings;
  auto fmt = [](double v) { return std::to_string(v); };
  benchmark::AddCustomContext("unmask_threads", std::to_string(c.threads));
  benchmark::AddCustomContext("unmask_isa", unmask::cpu::isa_name(unmask::cpu::detected_isa()));
  for (const auto& [level, p] : c.fma) {
    benchmark::AddCustomContext("fma_peak_gflops_" + level + "_1", fmt(p.one));
    benchmark::AddCustomContext("fma_peak_gflops_" + level + "_all", fmt(p.all));
    std::fprintf(stderr, "  fp32 FMA peak %-8s %8.1f GFLOP/s (1 thread) %8.1f (%d)\n", level.c_str(), p.one, p.all, c.threads);
  }
  benchmark::AddCustomContext("bf16_peak_gflops_1", fmt(c.bf16_dot.one));
  benchmark::AddCustomContext("bf16_peak_gflops_all", fmt(c.bf16_dot.all));
  benchmark::AddCustomContext("dram_read_gbps_1", fmt(c.dram_read.one));
  benchmark::AddCustomContext("dram_read_gbps_all", fmt(c.dram_read.all));
  benchmark::AddCustomContext("l3_read_gbps_1", fmt(c.l3_read.one));
  benchmark::AddCustomContext("l3_read_gbps_all", fmt(c.l3_read.all));
  std::fprintf(stderr, "  bf16 dot peak %8.1f GFLOP/s (1) %8.1f (%d); DRAM read %.1f GB/s (1) %.1f (%d); L3 read %.1f (1) %.1f (%d)\n",
               c.bf16_dot.one, c.bf16_dot.all, c.threads, c.dram_read.one, c.dram_read.all, c.threads, c.l3_read.one,
               c.l3_read.all, c.threads);
  unmask::register_all(quick);
  benchmark::Initialize(&n, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  unmask::cpu::set_thread_count(unmask::g_all_threads);
  return 0;
}
