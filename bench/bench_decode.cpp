// bench_decode: end-to-end tokens per second of diffusion decoding and of
// autoregressive decoding on the same machinery, one row per setting:
//   forward, one model call over R canvas rows with logits for every row
//     (--forward-rows), against its compute floor
//   diffusion, top-k with 1, 2, 4 and 8 tokens per step (steps = gen_length / k)
//   diffusion, Fast-dLLM threshold 0.9 (real-weight models only)
//   each of the above with a prefix and a dual K/V cache, with the share of
//   tokens that agree with uncached decoding
//   autoregressive, gen_length tokens from a K/V cache, against its
//   weight-streaming floor, with the share of its time spent in GEMMs
// Each row reports tokens, forwards, tokens per forward, wall and process CPU
// time (a busy machine shows as CPU time well below threads x wall time),
// tokens/s, ms per forward, and the floor of a forward:
//   forward and diffusion rows: compute floor = 2 x GEMM parameters (every
//     projection and the head) x canvas rows / the FMA peak of the backend's
//     level on this many threads
//   autoregressive rows: weight-streaming floor = bytes of weights read per
//     token (every GEMM weight, norms; the embedding table is gathered, not
//     streamed) / read bandwidth: DRAM's, or the L3's when the weights fit in
//     half the L3 (the tiny model)
// with every ceiling measured at the start of the run (bench/ceilings.hpp).
// The JSON also carries the resident weight bytes (packed weights plus the
// tensors still read in place) and the process's peak RSS.
//
// The same program runs on the GPU (bench_decode_cuda, --backend cuda): the
// floor then uses the device's measured copy bandwidth and bf16 weights, and
// each setting gets a `resident` row too (the whole step on the device,
// replayed as a CUDA graph, cached or not; its agreement is with the
// stepwise loop of the same cache mode).
//
//   bench_decode [--model DIR] [--ar-model DIR] [--shape 1b|8b] [--gen-length 256] [--threads N]
//                [--forward-rows 32,64] [--json FILE] [--smoke] [--backend cpu|cuda]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/ceilings.hpp"
#include "unmask/cpu/backend.hpp"
#if defined(UNMASK_BENCH_CUDA)
#include "unmask/cuda/backend.hpp"
#endif
#include "unmask/decode/ar_decoder.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/resident_decoder.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// The process's peak resident set (VmHWM) since reset_peak_rss(), in bytes:
// the ceilings' bandwidth test touches a GiB first, which is not the model's.
double peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) * 1024.0;
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) * 1024.0;
}
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// The CPU backend with its GEMMs timed: how much of a decoding step is spent
// outside them (norms, attention, sampling, bookkeeping).
struct timed_cpu_backend : unmask::cpu_backend {
  std::shared_ptr<double> gemm_seconds = std::make_shared<double>(0.0);
  void matmul_nt(const float* x, std::int64_t rows, const unmask::tensor_ref& w, std::int64_t n, float* y,
                 bool accumulate) const {
    const auto start = clock_type::now();
    cpu_backend::matmul_nt(x, rows, w, n, y, accumulate);
    *gemm_seconds += std::chrono::duration<double>(clock_type::now() - start).count();
  }
  void matmul_nt_group(const float* x, std::int64_t rows, const unmask::tensor_ref* const* w, const std::int64_t* n,
                       float* const* y, int count) const {
    const auto start = clock_type::now();
    cpu_backend::matmul_nt_group(x, rows, w, n, y, count);
    *gemm_seconds += std::chrono::duration<double>(clock_type::now() - start).count();
  }
};

#if defined(UNMASK_BENCH_CUDA)
// Device copy bandwidth in GB/s (bytes read + written), best of five
// device-to-device copies of `bytes`.
double measure_device_copy_bandwidth(std::size_t bytes) {
  unmask::cuda::device_buffer<char> a(bytes, "bandwidth source"), b(bytes, "bandwidth destination");
  cudaEvent_t start, stop;
  unmask::cuda::check(cudaEventCreate(&start), "cudaEventCreate");
  unmask::cuda::check(cudaEventCreate(&stop), "cudaEventCreate");
  double best = 0;
  for (int run = 0; run < 6; ++run) {
    cudaEventRecord(start);
    unmask::cuda::check(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice), "device copy");
    cudaEventRecord(stop);
    unmask::cuda::check(cudaEventSynchronize(stop), "device copy");
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    if (run > 0) best = std::max(best, 2.0 * double(bytes) / (double(ms) * 1e-3) / 1e9);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best;
}
#endif

template <class Backend>
struct backend_tag {
  using type = Backend;
};

// What a model's forward multiplies and reads.
struct model_figures {
  double gemm_params = 0;   // every projection and the head
  double streamed_bytes = 0;  // bytes a one-token forward reads: GEMM weights and norms, not the embedding table
};

model_figures figures_of(const unmask::transformer_model& m, bool bf16_on_device) {
  const unmask::transformer_weights& w = m.weights();
  const unmask::transformer_config& c = m.config();
  model_figures f;
  auto bytes = [&](const unmask::tensor_ref& t, std::int64_t numel) {
    return double(numel) * (bf16_on_device ? 2.0 : double(unmask::dtype_size(t.type)));
  };
  const std::int64_t head_params = c.vocab_size * c.d_model;
  f.gemm_params += double(head_params);
  f.streamed_bytes += bytes(w.head, head_params) + bytes(w.final_norm, w.final_norm.shape.numel());
  for (const auto& l : w.layers)
    for (const unmask::tensor_ref* t : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj,
                                        &l.attn_norm, &l.mlp_norm}) {
      const bool norm = t->shape.rank == 1;
      if (!norm) f.gemm_params += double(t->shape.numel());
      f.streamed_bytes += bytes(*t, t->shape.numel());
    }
  return f;
}

struct row {
  std::string model, backend = "cpu", mode, policy, cache = "none";
  int tokens_per_step = 0;
  double threshold = 0;
  int gen_length = 0, block_length = 0, steps = 0;
  std::int64_t tokens = 0, forwards = 0, canvas_rows = 0;
  double wall_s = 0, cpu_s = 0, gemm_s = -1;
  double floor_ms = 0;
  std::string floor_kind;  // "compute" or "weights"
  std::optional<double> agreement;
  std::vector<std::vector<std::int32_t>> outputs;

  double tokens_per_second() const { return double(tokens) / wall_s; }
  double ms_per_forward() const { return wall_s * 1e3 / double(forwards); }
  nlohmann::json json() const {
    nlohmann::json j = {{"model", model}, {"backend", backend}, {"mode", mode}, {"policy", policy}, {"cache", cache},
                        {"gen_length", gen_length}, {"block_length", block_length}, {"steps", steps},
                        {"tokens", tokens}, {"forwards", forwards}, {"canvas_rows", canvas_rows},
                        {"tokens_per_forward", forwards ? double(tokens) / double(forwards) : 0.0}, {"wall_s", wall_s},
                        {"cpu_s", cpu_s}, {"tokens_per_second", tokens ? tokens_per_second() : 0.0},
                        {"ms_per_forward", ms_per_forward()}, {"floor_ms_per_forward", floor_ms},
                        {"floor_kind", floor_kind}, {"over_floor", ms_per_forward() / floor_ms}};
    j["gemm_share"] = gemm_s >= 0 ? nlohmann::json(gemm_s / wall_s) : nlohmann::json();
    j["tokens_per_step"] = tokens_per_step ? nlohmann::json(tokens_per_step) : nlohmann::json();
    j["threshold"] = policy == "threshold" ? nlohmann::json(threshold) : nlohmann::json();
    j["agreement"] = agreement ? nlohmann::json(*agreement) : nlohmann::json();
    return j;
  }
};

double agreement(const row& a, const row& b, std::size_t prompt_length) {
  std::int64_t same = 0, total = 0;
  for (std::size_t s = 0; s < a.outputs.size(); ++s)
    for (std::size_t p = prompt_length; p < a.outputs[s].size(); ++p, ++total) same += a.outputs[s][p] == b.outputs[s][p];
  return total ? double(same) / double(total) : 1.0;
}

std::vector<int> parse_rows(const std::string& list) {
  std::vector<int> out;
  std::size_t start = 0;
  while (start < list.size()) {
    const std::size_t end = std::min(list.find(',', start), list.size());
    const std::string item = list.substr(start, end - start);
    char* tail = nullptr;
    const long v = std::strtol(item.c_str(), &tail, 10);
    if (item.empty() || *tail != '\0' || v < 1 || v > 1 << 16)
      throw unmask::argument_error(unmask::concat("--forward-rows: '", item, "' is not a positive row count"));
    out.push_back(int(v));
    start = end + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_decode: diffusion vs autoregressive tokens per second"};
  std::string model_dir, ar_dir, shape, json_path, name, forward_rows;
  int gen_length = 256, block_length = 32, prompt_length = 16, threads = 0;
  bool smoke = false;
  std::string prompt_text = "And God said, Let there be light: and there was light. And God saw the light,";
  app.add_option("--model", model_dir, "Diffusion model directory")->check(CLI::ExistingDirectory);
  app.add_option("--ar-model", ar_dir, "Autoregressive model directory (default: --model)")->check(CLI::ExistingDirectory);
  app.add_option("--shape", shape, "Random-weight model of a real shape instead")->check(CLI::IsMember({"1b", "8b"}));
  app.add_option("--name", name, "Model name in the report");
  app.add_option("--gen-length", gen_length)->check(CLI::PositiveNumber);
  app.add_option("--block-length", block_length)->check(CLI::PositiveNumber);
  app.add_option("--prompt-length", prompt_length, "Prompt tokens for random-weight models")->check(CLI::PositiveNumber);
  app.add_option("--prompt", prompt_text, "Prompt text (models with a tokenizer.json)");
  app.add_option("--threads", threads, "CPU threads (default: the physical cores)")->check(CLI::Range(1, 1024));
  app.add_option("--forward-rows", forward_rows, "Comma-separated canvas sizes for the forward rows (default: none)");
  app.add_option("--json", json_path, "Write the rows as JSON");
  app.add_flag("--smoke", smoke, "One tiny run per row kind (CI): checks that everything works, measures nothing");
#if defined(UNMASK_BENCH_CUDA)
  std::string backend_name = "cuda";
  app.add_option("--backend", backend_name, "Where to run")->check(CLI::IsMember({"cpu", "cuda"}));
#else
  std::string backend_name = "cpu";
  app.add_option("--backend", backend_name, "Where to run (bench_decode_cuda also runs on the GPU)")
      ->check(CLI::IsMember({"cpu"}));
#endif
  CLI11_PARSE(app, argc, argv);
  if (model_dir.empty() == shape.empty()) {
    std::fprintf(stderr, "bench_decode: give exactly one of --model and --shape\n");
    return 2;
  }
  try {
    if (threads > 0) unmask::cpu::set_thread_count(threads);
    const std::vector<int> forward_sizes = forward_rows.empty() ? std::vector<int>{} : parse_rows(forward_rows);
    if (smoke) gen_length = std::min(gen_length, 32), block_length = std::min(block_length, 16);
    std::optional<unmask::transformer_model> model, ar_model;
    std::vector<std::int32_t> prompt;
    if (!shape.empty()) {
      const unmask::transformer_config c = shape == "8b" ? unmask::transformer_config::llada_8b() : unmask::transformer_config::llada_1b_shape();
      std::fprintf(stderr, "building a random %s model...\n", shape.c_str());
      model.emplace(unmask::transformer_model::random(c, 1));
      for (int i = 0; i < prompt_length; ++i) prompt.push_back(std::int32_t((i * 7919) % 100000));
      if (name.empty()) name = "random-" + shape;
    } else {
      model.emplace(unmask::transformer_model::load(model_dir));
      if (!ar_dir.empty()) ar_model.emplace(unmask::transformer_model::load(ar_dir));
      const auto tokenizer = std::filesystem::path(model_dir) / "tokenizer.json";
      if (std::filesystem::exists(tokenizer)) prompt = unmask::bpe_tokenizer::load(tokenizer.string()).encode(prompt_text);
      if (prompt.empty()) prompt.assign(std::size_t(prompt_length), 1);
      if (name.empty()) name = std::filesystem::path(model_dir).filename().string();
    }
    const unmask::transformer_model& diffusion_model = *model;
    const unmask::transformer_model& autoregressive_model = ar_model ? *ar_model : *model;
    const bool on_gpu = backend_name == "cuda";
    const std::string ar_name = ar_model ? std::filesystem::path(ar_dir).filename().string() : name;

    // Ceilings: the device's copy bandwidth, or the CPU's peaks and read bandwidths.
    double device_bandwidth = 0, fma_peak = 0, dram = 0, l3 = 0;
    const double l3_bytes = double(std::max<long>(0, sysconf(_SC_LEVEL3_CACHE_SIZE)));
    nlohmann::json ceiling_json;
    const unmask::cpu_backend cpu_reference;  // the level and mode CPU rows run at
#if defined(UNMASK_BENCH_CUDA)
    if (on_gpu) {
      device_bandwidth = measure_device_copy_bandwidth(std::size_t(smoke ? 64 : 1024) << 20);
      cudaDeviceProp prop{};
      cudaGetDeviceProperties(&prop, 0);
      std::fprintf(stderr, "%s: device copy bandwidth %.1f GB/s\n", prop.name, device_bandwidth);
      ceiling_json = {{"device_copy_gbps", device_bandwidth}};
    }
#endif
    if (!on_gpu) {
      const unmask::bench::ceilings c = unmask::bench::measure_ceilings(smoke);
      const int t = unmask::cpu::thread_count();
      fma_peak = c.fma_peak(unmask::cpu::isa_name(cpu_reference.isa()), t);
      dram = t > 1 ? c.dram_read.all : c.dram_read.one;
      l3 = t > 1 ? c.l3_read.all : c.l3_read.one;
      std::fprintf(stderr, "%d threads, level %s: fp32 FMA peak %.1f GFLOP/s, DRAM read %.1f GB/s, L3 read %.1f GB/s (L3 %.0f MiB)\n",
                   t, unmask::cpu::isa_name(cpu_reference.isa()), fma_peak, dram, l3, l3_bytes / 1048576.0);
      ceiling_json = {{"fma_peak_gflops", fma_peak}, {"dram_read_gbps", dram}, {"l3_read_gbps", l3}, {"l3_bytes", l3_bytes}};
    }
    reset_peak_rss();
    const model_figures diffusion_figures = figures_of(diffusion_model, on_gpu);
    const model_figures ar_figures = figures_of(autoregressive_model, on_gpu);
    // ms of the compute floor of a forward over `canvas` rows, and of the
    // weight-streaming floor of a one-token forward.
    auto compute_floor_ms = [&](double canvas) {
      return on_gpu ? 0.0 : 2.0 * diffusion_figures.gemm_params * canvas / (fma_peak * 1e9) * 1e3;
    };
    auto weight_floor_ms = [&](const model_figures& f) {
      if (on_gpu) return f.streamed_bytes / (device_bandwidth / 2 * 1e9) * 1e3;  // copy bandwidth counts read + write
      const double bandwidth = f.streamed_bytes <= l3_bytes / 2 ? l3 : dram;
      return f.streamed_bytes / (bandwidth * 1e9) * 1e3;
    };
    const bool real_weights = shape.empty();
    std::vector<row> rows;
    std::vector<unmask::decode_request> requests = {{prompt, 0}};
    const std::int64_t canvas_length = std::int64_t(prompt.size()) + gen_length;

    auto run_forward = [&](auto tag, int canvas) {
      using backend = typename decltype(tag)::type;
      unmask::transformer_forward<backend> forward(diffusion_model);
      const unmask::transformer_config& c = diffusion_model.config();
      std::vector<std::int32_t> tokens(static_cast<std::size_t>(canvas));
      for (int i = 0; i < canvas; ++i) tokens[std::size_t(i)] = std::int32_t((i * 7919) % c.vocab_size);
      typename backend::template buffer<float> logits(std::size_t(canvas) * std::size_t(c.vocab_size));
      const int repeats = smoke ? 1 : 3;
      row r;
      r.backend = backend_name, r.model = name, r.mode = "forward", r.policy = "-", r.canvas_rows = canvas;
      double best = 1e30, best_cpu = 0;
      for (int i = 0; i <= repeats; ++i) {  // the first call warms up (and packs nothing: packing happened at construction)
        const double cpu0 = process_cpu_seconds();
        const auto start = clock_type::now();
        forward({tokens.data(), 1, canvas, nullptr}, unmask::attention_mask::full(), logits.data());
        if constexpr (!std::is_same_v<backend, unmask::cpu_backend>) forward.backend().synchronize();
        const double wall = std::chrono::duration<double>(clock_type::now() - start).count();
        if (i > 0 && wall < best) best = wall, best_cpu = process_cpu_seconds() - cpu0;
      }
      r.tokens = 0, r.forwards = 1, r.wall_s = best, r.cpu_s = best_cpu;
      r.floor_ms = compute_floor_ms(canvas), r.floor_kind = "compute";
      return r;
    };

    // resident: the whole step on the device, replayed as a CUDA graph (unmask/decode/resident_decoder.hpp).
    auto run_diffusion = [&](auto tag, const std::string& policy, int tokens_per_step, unmask::cache_mode cache,
                             bool resident = false) {
      using backend = typename decltype(tag)::type;
      unmask::diffusion_settings s;
      const int bl = std::min(block_length, gen_length);
      s.layout = {gen_length, bl, policy == "threshold" ? 0 : gen_length / tokens_per_step};
      if (policy == "threshold") s.selection = unmask::selection_rule::fast_dllm_threshold(0.9f);
      s.cache.mode = cache;
      s.stop_at_eos = false;
      unmask::decode_output out;
      if (resident) {
        unmask::resident_decoder<backend> decoder(diffusion_model, s);
        decoder.generate(requests);  // warm-up, then graph capture on the second step of the first block
        out = decoder.generate(requests);
      } else {
        unmask::diffusion_decoder<backend> decoder(diffusion_model, s);
        decoder.generate(requests);  // warm-up: GEMM plans, kernel loading, scratch
        out = decoder.generate(requests);
      }
      row r;
      r.backend = backend_name;
      r.model = name, r.mode = resident ? "resident" : "diffusion", r.policy = policy, r.cache = unmask::to_string(cache);
      r.tokens_per_step = policy == "threshold" ? 0 : tokens_per_step, r.threshold = 0.9;
      r.gen_length = gen_length, r.block_length = bl, r.steps = s.layout.steps;
      r.tokens = out.committed, r.forwards = out.forwards, r.wall_s = out.seconds;
      r.cpu_s = out.cpu_seconds;
      // Uncached steps forward the whole canvas; cached ones about a block.
      r.canvas_rows = cache == unmask::cache_mode::none ? canvas_length : bl;
      r.floor_ms = compute_floor_ms(double(r.canvas_rows)), r.floor_kind = "compute";
      for (const auto& seq : out.sequences) r.outputs.push_back(seq.canvas);
      return r;
    };
    auto run_autoregressive = [&](auto tag) {
      using backend = typename decltype(tag)::type;
      unmask::ar_settings a;
      a.max_new_tokens = gen_length;
      a.stop_at_eos = false;
      backend b{};
      unmask::ar_decoder<backend> decoder(autoregressive_model, a, b);
      decoder.generate(requests);  // warm-up
      double gemm0 = 0;
      if constexpr (std::is_same_v<backend, timed_cpu_backend>) gemm0 = *b.gemm_seconds;
      const auto out = decoder.generate(requests);
      row r;
      r.backend = backend_name;
      r.model = ar_name;
      r.mode = "autoregressive", r.policy = "greedy", r.tokens_per_step = 1;
      r.gen_length = gen_length, r.steps = gen_length, r.canvas_rows = 1;
      r.tokens = out.committed, r.forwards = out.forwards, r.wall_s = out.seconds, r.cpu_s = out.cpu_seconds;
      if constexpr (std::is_same_v<backend, timed_cpu_backend>) r.gemm_s = *b.gemm_seconds - gemm0;
      r.floor_ms = weight_floor_ms(ar_figures), r.floor_kind = "weights";
      return r;
    };
    auto run = [&](auto tag, auto ar_tag) {
      for (int canvas : forward_sizes) {
        rows.push_back(run_forward(tag, canvas));
        std::fprintf(stderr, "  forward over %d rows done\n", canvas);
      }
      std::vector<int> per_step = smoke ? std::vector<int>{4} : std::vector<int>{1, 2, 4, 8};
      std::vector<std::string> policies;
      for (int k : per_step) policies.push_back("top_k:" + std::to_string(k));
      if (real_weights) policies.push_back("threshold");
      for (const std::string& p : policies) {
        const bool threshold = p == "threshold";
        const int k = threshold ? 0 : std::stoi(p.substr(6));
        const row base = run_diffusion(tag, threshold ? "threshold" : "top_k", k, unmask::cache_mode::none);
        rows.push_back(base);
        if (on_gpu) {
          row r = run_diffusion(tag, threshold ? "threshold" : "top_k", k, unmask::cache_mode::none, true);
          r.agreement = agreement(base, r, prompt.size());
          rows.push_back(r);
        }
        for (unmask::cache_mode m : {unmask::cache_mode::prefix, unmask::cache_mode::dual}) {
          const row stepwise = run_diffusion(tag, threshold ? "threshold" : "top_k", k, m);
          row r = stepwise;
          r.agreement = agreement(base, r, prompt.size());
          rows.push_back(r);
          if (on_gpu) {  // the cached resident loop, agreeing with the stepwise cached one
            row cached = run_diffusion(tag, threshold ? "threshold" : "top_k", k, m, true);
            cached.agreement = agreement(stepwise, cached, prompt.size());
            rows.push_back(cached);
          }
        }
        std::fprintf(stderr, "  %s done\n", p.c_str());
      }
      rows.push_back(run_autoregressive(ar_tag));
    };
#if defined(UNMASK_BENCH_CUDA)
    if (on_gpu) run(backend_tag<unmask::cuda_backend>{}, backend_tag<unmask::cuda_backend>{});
#endif
    if (!on_gpu) run(backend_tag<unmask::cpu_backend>{}, backend_tag<timed_cpu_backend>{});
    std::printf("%-14s %-14s %-9s %-7s %5s %6s %7s %8s %7s %9s %9s %8s %8s %6s %6s %7s\n", "model", "mode", "policy", "cache",
                "tok/st", "rows", "tokens", "forwards", "tok/fwd", "tokens/s", "ms/fwd", "floor ms", "x floor", "cpu/w",
                "gemm", "agree");
    for (const row& r : rows)
      std::printf("%-14s %-14s %-9s %-7s %5s %6lld %7lld %8lld %7.2f %9.1f %9.3f %8.3f %8.2f %6.2f %6s %7s\n",
                  r.model.c_str(), r.mode.c_str(), r.policy.c_str(), r.cache.c_str(),
                  r.tokens_per_step ? std::to_string(r.tokens_per_step).c_str() : "-", (long long)r.canvas_rows,
                  (long long)r.tokens, (long long)r.forwards, double(r.tokens) / double(r.forwards),
                  r.tokens ? r.tokens_per_second() : 0.0, r.ms_per_forward(), r.floor_ms, r.ms_per_forward() / r.floor_ms,
                  r.cpu_s / r.wall_s, r.gemm_s >= 0 ? (std::to_string(int(r.gemm_s / r.wall_s * 100)) + "%").c_str() : "-",
                  r.agreement ? (std::to_string(int(*r.agreement * 1000) / 10.0).substr(0, 5) + "%").c_str() : "-");
    // What the CPU engine holds: the packed projections and head, and the
    // tensors it reads where the checkpoint maps them (embedding, norms).
    const unmask::transformer_weights& dw = diffusion_model.weights();
    double in_place = double(dw.embedding.bytes() + dw.final_norm.bytes());
    for (const auto& l : dw.layers) in_place += double(l.attn_norm.bytes() + l.mlp_norm.bytes());
    const double resident = double(diffusion_model.prepared_bytes()) + in_place;
    std::fprintf(stderr, "resident weights %.1f MiB (packed %.1f MiB), peak RSS %.1f MiB\n", resident / 1048576.0,
                 double(diffusion_model.prepared_bytes()) / 1048576.0, peak_rss_bytes() / 1048576.0);
    if (!json_path.empty()) {
      nlohmann::json j = {{"backend", backend_name},
                          {"threads", unmask::cpu::thread_count()},
                          {"isa", on_gpu ? "cuda" : unmask::cpu::isa_name(cpu_reference.isa())},
                          {"compute", unmask::cpu::compute_mode_name(cpu_reference.compute())},
                          {"ceilings", ceiling_json},
                          {"gemm_params", diffusion_figures.gemm_params},
                          {"streamed_bytes_per_token", ar_figures.streamed_bytes},
                          {"resident_weight_bytes", resident},
                          {"packed_weight_bytes", double(diffusion_model.prepared_bytes())},
                          {"file_weight_bytes", double(diffusion_model.weights().bytes())},
                          {"peak_rss_bytes", peak_rss_bytes()},
                          {"prompt_tokens", prompt.size()},
                          {"smoke", smoke},
                          {"rows", nlohmann::json::array()}};
      for (const row& r : rows) j["rows"].push_back(r.json());
      std::ofstream(json_path) << j.dump(2) << "\n";
    }
  } catch (const unmask::error& e) {
    std::fprintf(stderr, "bench_decode: %s\n", e.what());
    return 1;
  }
  return 0;
}
