// bench_decode: end-to-end tokens per second of diffusion decoding and of
// autoregressive decoding on the same machinery, one row per setting:
//   diffusion, top-k with 1, 2, 4 and 8 tokens per step (steps = gen_length / k)
//   diffusion, Fast-dLLM threshold 0.9 (real-weight models only)
//   each of the above with a prefix and a dual K/V cache, with the share of
//   tokens that agree with uncached decoding
//   autoregressive, gen_length tokens from a K/V cache
// Each row reports tokens, forwards, tokens per forward, wall time, tokens/s,
// ms per forward, and ms per forward over the weight-streaming floor (weight
// bytes / the machine's measured copy bandwidth), the least time a forward
// that reads every weight once can take.
//
// The same program runs on the GPU (bench_decode_cuda, --backend cuda): the
// floor then uses the device's measured copy bandwidth and bf16 weights, and
// each uncached setting gets a `resident` row too (the whole step on the
// device, replayed as a CUDA graph; its agreement is with the stepwise loop).
//
//   bench_decode [--model DIR] [--ar-model DIR] [--shape 1b|8b] [--gen-length 256] [--json FILE] [--smoke]
//                [--backend cpu|cuda]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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

// Copy bandwidth in GB/s (bytes read + bytes written), best of several runs
// over buffers far larger than the caches, all threads copying.
double measure_copy_bandwidth(std::size_t bytes) {
  std::vector<char> a(bytes, 1), b(bytes, 0);
  const std::int64_t chunks = 64, chunk = std::int64_t(bytes) / chunks;
  double best = 0;
  for (int run = 0; run < 5; ++run) {
    const auto start = clock_type::now();
    unmask::cpu::parallel_for(0, chunks, [&](std::int64_t c) {
      std::memcpy(b.data() + c * chunk, a.data() + c * chunk, std::size_t(chunk));
    });
    const double s = std::chrono::duration<double>(clock_type::now() - start).count();
    best = std::max(best, 2.0 * double(chunks * chunk) / s / 1e9);
    std::swap(a, b);
  }
  return best;
}

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

struct row {
  std::string model, backend = "cpu", mode, policy, cache = "none";
  int tokens_per_step = 0;
  double threshold = 0;
  int gen_length = 0, block_length = 0, steps = 0;
  std::int64_t tokens = 0, forwards = 0;
  double wall_s = 0;
  double weight_bytes = 0, bandwidth_gbps = 0;
  std::optional<double> agreement;
  std::vector<std::vector<std::int32_t>> outputs;

  double tokens_per_second() const { return double(tokens) / wall_s; }
  double ms_per_forward() const { return wall_s * 1e3 / double(forwards); }
  double floor_ms() const { return weight_bytes / (bandwidth_gbps * 1e9) * 1e3; }
  nlohmann::json json() const {
    nlohmann::json j = {{"model", model}, {"backend", backend}, {"mode", mode}, {"policy", policy}, {"cache", cache},
                        {"gen_length", gen_length}, {"block_length", block_length}, {"steps", steps},
                        {"tokens", tokens}, {"forwards", forwards},
                        {"tokens_per_forward", double(tokens) / double(forwards)}, {"wall_s", wall_s},
                        {"tokens_per_second", tokens_per_second()}, {"ms_per_forward", ms_per_forward()},
                        {"weight_bytes", weight_bytes}, {"floor_ms_per_forward", floor_ms()},
                        {"over_floor", ms_per_forward() / floor_ms()}};
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_decode: diffusion vs autoregressive tokens per second"};
  std::string model_dir, ar_dir, shape, json_path, name;
  int gen_length = 256, block_length = 32, prompt_length = 16;
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
    if (smoke) gen_length = std::min(gen_length, 32), block_length = std::min(block_length, 16);
    std::optional<unmask::llada_model> model, ar_model;
    std::vector<std::int32_t> prompt;
    if (!shape.empty()) {
      const unmask::llada_config c = shape == "8b" ? unmask::llada_config::llada_8b() : unmask::llada_config::llada_1b_shape();
      std::fprintf(stderr, "building a random %s model...\n", shape.c_str());
      model.emplace(unmask::llada_model::random(c, 1));
      for (int i = 0; i < prompt_length; ++i) prompt.push_back(std::int32_t((i * 7919) % 100000));
      if (name.empty()) name = "random-" + shape;
    } else {
      model.emplace(unmask::llada_model::load(model_dir));
      if (!ar_dir.empty()) ar_model.emplace(unmask::llada_model::load(ar_dir));
      const auto tokenizer = std::filesystem::path(model_dir) / "tokenizer.json";
      if (std::filesystem::exists(tokenizer)) prompt = unmask::bpe_tokenizer::load(tokenizer.string()).encode(prompt_text);
      if (prompt.empty()) prompt.assign(std::size_t(prompt_length), 1);
      if (name.empty()) name = std::filesystem::path(model_dir).filename().string();
    }
    const unmask::llada_model& diffusion_model = *model;
    const unmask::llada_model& autoregressive_model = ar_model ? *ar_model : *model;
    const bool on_gpu = backend_name == "cuda";
    double bandwidth = 0;
#if defined(UNMASK_BENCH_CUDA)
    if (on_gpu) {
      bandwidth = measure_device_copy_bandwidth(std::size_t(smoke ? 64 : 1024) << 20);
      cudaDeviceProp prop{};
      cudaGetDeviceProperties(&prop, 0);
      std::fprintf(stderr, "%s: device copy bandwidth %.1f GB/s\n", prop.name, bandwidth);
    }
#endif
    if (!on_gpu) {
      bandwidth = measure_copy_bandwidth(std::size_t(smoke ? 64 : 1024) << 20);
      std::fprintf(stderr, "copy bandwidth %.1f GB/s, %u hardware threads, %d OpenMP threads\n", bandwidth,
                   std::thread::hardware_concurrency(), unmask::cpu::thread_count());
    }
    // Bytes a forward streams: the file's on the CPU, bf16 on the GPU.
    auto weight_bytes = [&](const unmask::llada_model& m) {
      double bytes = 0;
      if (!on_gpu) return double(m.weights().bytes());
      const unmask::llada_weights& w = m.weights();
      std::vector<const void*> seen;
      auto add = [&](const unmask::tensor_ref& t) {
        if (std::find(seen.begin(), seen.end(), t.data) != seen.end()) return;
        seen.push_back(t.data);
        bytes += double(t.shape.numel()) * 2.0;
      };
      add(w.wte), add(w.ln_f), add(w.head);
      for (const auto& l : w.layers)
        for (const unmask::tensor_ref* t : {&l.attn_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.attn_out, &l.ff_norm,
                                            &l.ff_proj, &l.up_proj, &l.ff_out})
          add(*t);
      return bytes;
    };
    const bool real_weights = shape.empty();
    std::vector<row> rows;
    std::vector<unmask::decode_request> requests = {{prompt, 0}};

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
        if (on_gpu) decoder.generate(requests);  // warm-up: GEMM plans, kernel loading, scratch
        out = decoder.generate(requests);
      }
      row r;
      r.backend = backend_name;
      r.model = name, r.mode = resident ? "resident" : "diffusion", r.policy = policy, r.cache = unmask::to_string(cache);
      r.tokens_per_step = policy == "threshold" ? 0 : tokens_per_step, r.threshold = 0.9;
      r.gen_length = gen_length, r.block_length = bl, r.steps = s.layout.steps;
      r.tokens = out.committed, r.forwards = out.forwards, r.wall_s = out.seconds;
      r.weight_bytes = weight_bytes(diffusion_model), r.bandwidth_gbps = bandwidth;
      for (const auto& seq : out.sequences) r.outputs.push_back(seq.canvas);
      return r;
    };
    auto run_autoregressive = [&](auto tag) {
      using backend = typename decltype(tag)::type;
      unmask::ar_settings a;
      a.max_new_tokens = gen_length;
      a.stop_at_eos = false;
      unmask::ar_decoder<backend> decoder(autoregressive_model, a);
      if (on_gpu) decoder.generate(requests);  // warm-up
      const auto out = decoder.generate(requests);
      row r;
      r.backend = backend_name;
      r.model = ar_model ? std::filesystem::path(ar_dir).filename().string() : name;
      r.mode = "autoregressive", r.policy = "greedy", r.tokens_per_step = 1;
      r.gen_length = gen_length, r.steps = gen_length;
      r.tokens = out.committed, r.forwards = out.forwards, r.wall_s = out.seconds;
      r.weight_bytes = weight_bytes(autoregressive_model), r.bandwidth_gbps = bandwidth;
      return r;
    };
    auto run = [&](auto tag) {
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
          row r = run_diffusion(tag, threshold ? "threshold" : "top_k", k, m);
          r.agreement = agreement(base, r, prompt.size());
          rows.push_back(r);
        }
        std::fprintf(stderr, "  %s done\n", p.c_str());
      }
      rows.push_back(run_autoregressive(tag));
    };
#if defined(UNMASK_BENCH_CUDA)
    if (on_gpu) run(backend_tag<unmask::cuda_backend>{});
#endif
    if (!on_gpu) run(backend_tag<unmask::cpu_backend>{});
    std::printf("%-14s %-15s %-10s %-7s %5s %7s %9s %9s %10s %9s %9s %10s %9s\n", "model", "mode", "policy", "cache",
                "tok/st", "tokens", "forwards", "tok/fwd", "tokens/s", "ms/fwd", "floor ms", "over floor", "agree");
    for (const row& r : rows)
      std::printf("%-14s %-15s %-10s %-7s %5s %7lld %9lld %9.2f %10.1f %9.3f %9.3f %10.1f %9s\n", r.model.c_str(),
                  r.mode.c_str(), r.policy.c_str(), r.cache.c_str(),
                  r.tokens_per_step ? std::to_string(r.tokens_per_step).c_str() : "-", (long long)r.tokens,
                  (long long)r.forwards, double(r.tokens) / double(r.forwards), r.tokens_per_second(), r.ms_per_forward(),
                  r.floor_ms(), r.ms_per_forward() / r.floor_ms(),
                  r.agreement ? (std::to_string(int(*r.agreement * 1000) / 10.0).substr(0, 5) + "%").c_str() : "-");
    if (!json_path.empty()) {
      nlohmann::json j = {{"backend", backend_name}, {"bandwidth_gbps", bandwidth}, {"threads", unmask::cpu::thread_count()},
                          {"prompt_tokens", prompt.size()}, {"smoke", smoke}, {"rows", nlohmann::json::array()}};
      for (const row& r : rows) j["rows"].push_back(r.json());
      std::ofstream(json_path) << j.dump(2) << "\n";
    }
  } catch (const unmask::error& e) {
    std::fprintf(stderr, "bench_decode: %s\n", e.what());
    return 1;
  }
  return 0;
}
