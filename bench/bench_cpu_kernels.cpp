// CPU kernel benchmarks. Each reports the bytes it must move and the
// floating-point operations it performs as rates (bytes_per_second, FLOP/s),
// so a run shows how far a kernel is from the machine's memory and compute
// limits. Shapes: the projections of a ~1B LLaDA-style model (d_model 2048,
// mlp 5632) at canvas sizes from a decode step (1 row) to a 256-token canvas.
//
//   bench_cpu_kernels [--benchmark_filter=...] [--benchmark_min_time=0.01]
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "unmask/cpu/backend.hpp"
#include "unmask/cpu/rope.hpp"
#include "unmask/model/llada_forward.hpp"

namespace unmask {
namespace {

std::vector<bfloat16> random_bf16(std::size_t n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<bfloat16> v(n);
  for (auto& x : v) x = to_bfloat16(normal(rng));
  return v;
}

// y (rows, n) = x (rows, k) W^T with a bf16 weight.
void BM_MatmulBf16(benchmark::State& state) {
  const std::int64_t rows = state.range(0), n = state.range(1), k = state.range(2);
  const auto w = random_bf16(std::size_t(n * k));
  std::vector<float> x(std::size_t(rows * k), 0.5f), y(std::size_t(rows * n));
  const tensor_ref weight{w.data(), dtype::bf16, {n, k}, "w"};
  for (auto _ : state) {
    cpu::matmul_nt(x.data(), rows, weight, n, y.data(), false);
    benchmark::DoNotOptimize(y.data());
  }
  const double bytes = double(n * k * 2 + rows * k * 4 + rows * n * 4);
  state.counters["GB/s"] = benchmark::Counter(bytes * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * double(rows * n * k) * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MatmulBf16)->Args({1, 2048, 2048})->Args({32, 2048, 2048})->Args({256, 2048, 2048})
    ->Args({32, 5632, 2048})->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Attention(benchmark::State& state) {
  attention_shape s;
  s.batch = 1;
  s.q_len = s.kv_capacity = state.range(0);
  s.heads = 16;
  s.kv_heads = 16;
  s.head_dim = 128;
  const std::size_t size = std::size_t(s.q_len * s.heads * s.head_dim);
  std::vector<float> q(size, 0.01f), k(size, 0.02f), v(size, 0.03f), out(size);
  for (auto _ : state) {
    cpu::attention(q.data(), k.data(), v.data(), out.data(), s, {}, attention_mask::full());
    benchmark::DoNotOptimize(out.data());
  }
  const double flops = 4.0 * double(s.q_len * s.kv_capacity * s.heads * s.head_dim);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GB/s"] =
      benchmark::Counter(double(4 * size * 4) * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Attention)->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_RmsNorm(benchmark::State& state) {
  const std::int64_t rows = state.range(0), dim = 2048;
  std::vector<float> x(std::size_t(rows * dim), 1.0f), out(x.size());
  const auto w = random_bf16(std::size_t(dim));
  const tensor_ref weight{w.data(), dtype::bf16, {dim}, "w"};
  for (auto _ : state) {
    cpu::rmsnorm(x.data(), rows, dim, weight, 1e-5f, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GB/s"] =
      benchmark::Counter(double(rows * dim * 8) * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(double(rows * dim * 4) * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RmsNorm)->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_Rope(benchmark::State& state) {
  const std::int64_t rows = state.range(0), heads = 16, hd = 128;
  std::vector<float> x(std::size_t(rows * heads * hd), 0.5f);
  std::vector<std::int32_t> positions(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) positions[std::size_t(r)] = std::int32_t(r);
  const auto table = cpu::rope_table(rows, hd, 10000.0f);
  for (auto _ : state) {
    cpu::rope(x.data(), rows, heads, hd, positions.data(), table);
    benchmark::DoNotOptimize(x.data());
  }
  const double elements = double(rows * heads * hd);
  state.counters["GB/s"] = benchmark::Counter(elements * 8 * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(elements * 3 * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Rope)->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_SwiGlu(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  std::vector<float> gate(static_cast<std::size_t>(n), 0.3f), up(static_cast<std::size_t>(n), 0.7f),
      out(static_cast<std::size_t>(n));
  for (auto _ : state) {
    cpu::swiglu(gate.data(), up.data(), n, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GB/s"] = benchmark::Counter(double(n) * 12 * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(double(n) * 4 * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SwiGlu)->Arg(256 * 5632)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_Embedding(benchmark::State& state) {
  const std::int64_t rows = state.range(0), vocab = 32000, dim = 2048;
  const auto w = random_bf16(std::size_t(vocab * dim));
  const tensor_ref wte{w.data(), dtype::bf16, {vocab, dim}, "wte"};
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) tokens[std::size_t(r)] = std::int32_t((r * 7919) % vocab);
  std::vector<float> out(std::size_t(rows * dim));
  for (auto _ : state) {
    cpu::embedding(tokens.data(), rows, wte, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GB/s"] = benchmark::Counter(double(rows * dim) * 6 * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(0.0, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Embedding)->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();

// One whole forward pass of the tiny golden checkpoint over a 64-token canvas.
void BM_TinyForward(benchmark::State& state) {
  const llada_model model = llada_model::load(std::string(UNMASK_TEST_DATA_DIR) + "/tiny_llada_mha");
  const std::int64_t length = state.range(0);
  std::vector<std::int32_t> tokens(std::size_t(length), 99);
  std::vector<float> logits(std::size_t(length * model.config().vocab_size));
  llada_forward<cpu_backend> forward(model);
  for (auto _ : state) {
    forward({tokens.data(), 1, length, nullptr}, attention_mask::full(), logits.data());
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(double(length) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TinyForward)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace unmask

BENCHMARK_MAIN();
