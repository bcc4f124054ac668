// The CUDA backend end to end (unmask/cuda/backend.hpp) on the embedded tiny
// models, against the CPU backend:
//  - forward logits (whole canvas with padding, a cached block with selected
//    rows, block-causal attention) within 1e-4 of the largest logit with fp32
//    activations and 4e-2 with bf16;
//  - diffusion decoding (top-k with LLaDA's schedule, Fast-dLLM's threshold,
//    classifier-free guidance, a prefix cache) and autoregressive decoding at
//    temperature 0 and at temperature 1 with a fixed seed: the GPU's tokens
//    equal the CPU's, and where they do not, the first divergence must be a
//    near tie: re-running the model on the shared canvas, the CPU's margin
//    between the two choices is within twice the logit (or confidence)
//    difference measured between the backends at that step. Differing
//    positions are counted and printed, never hidden;
//  - a denoising step captured as a CUDA graph and replayed on a new batch
//    of the same shape gives the eager logits bit for bit; resident
//    decoding (the whole step on the device, replayed as a graph) agrees
//    with the step-by-step loop;
//  - errors: no device, a bad device index, a failing kernel and an
//    allocation too large each throw an exception naming the operation.
// Device tests skip without a GPU; the error-message tests run everywhere.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cuda/device.hpp"
#include "halving_schedule.hpp"
#include "logit_bias.hpp"
#include "support/user_policies.hpp"
#include "margin_gap_rule.hpp"
#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/cuda/backend.hpp"
#include "unmask/cuda/step_graph.hpp"
#include "unmask/decode/ar_decoder.hpp"
#include "unmask/decode/step_scheduler.hpp"
#include "unmask/decode/block_diffusion_decoder.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/resident_decoder.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"

namespace unmask {
namespace {

using test::expect_error;

// $UNMASK_MODELS_DIR when set (a carried build), else the source tree's models/.
std::string models_dir() {
  const char* moved = std::getenv("UNMASK_MODELS_DIR");
  return moved && *moved ? moved : UNMASK_MODELS_DIR;
}
const transformer_model& tiny_llada() {
  static const transformer_model model = transformer_model::load(models_dir() + "/tiny-llada");
  return model;
}
const transformer_model& tiny_ar() {
  static const transformer_model model = transformer_model::load(models_dir() + "/tiny-ar");
  return model;
}

std::vector<decode_request> prompts() {
  static const bpe_tokenizer tokenizer = bpe_tokenizer::load(models_dir() + "/tiny-llada/tokenizer.json");
  const char* texts[] = {"In the beginning God created", "And the LORD said unto Moses,", "Blessed are the meek: for",
                         "Jesus wept."};
  std::vector<decode_request> out;
  for (std::uint32_t i = 0; i < 4; ++i) out.push_back({tokenizer.encode(texts[i]), i});
  return out;
}

// ---- errors (run everywhere) ----

TEST(CudaBackendHost, ErrorsNameTheOperation) {
  expect_error<device_error>([] { cuda::check(cudaErrorIllegalAddress, "attention (full, batch 2)"); },
                             {"CUDA error in attention (full, batch 2)", "illegal memory access"});
  expect_error<device_memory_error>([] { cuda::check(cudaErrorMemoryAllocation, "K/V cache"); },
                                    {"CUDA error in K/V cache", "out of memory"});
  expect_error<device_error>([] { cuda::check(CUBLAS_STATUS_NOT_SUPPORTED, "GEMM q_proj"); },
                             {"cuBLAS error in GEMM q_proj", "CUBLAS_STATUS_NOT_SUPPORTED"});
  expect_error<device_error>([] { cuda::check(cudaErrorNotSupported, "vocabulary pass"); },
                             {"vocabulary pass", "does not support these settings"});
}

TEST(CudaBackendHost, WithoutADeviceConstructionSaysSo) {
  int count = 0;
  if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0) GTEST_SKIP() << "a device is present";
  cudaGetLastError();
  expect_error<device_error>([] { cuda_backend backend; }, {"CUDA backend: no usable CUDA device"});
}

TEST(CudaBackend, BadDeviceIndexAndFailuresAreNamed) {
  UNMASK_REQUIRE_DEVICE();
  cuda_backend_options options;
  options.device = 4096;
  expect_error<argument_error>([&] { cuda_backend backend(options); }, {"device 4096 does not exist"});
  cuda_backend backend;
  std::vector<draw_site> sites(2);
  std::vector<token_choice> out(2);
  expect_error<device_error>(
      [&] {
        backend.choose_tokens(nullptr, 2, 10, {}, confidence_metric::max_prob, -1, counter_rng{}, sites.data(),
                              out.data());
      },
      {"CUDA error in vocabulary pass (2 rows of 10)"});
  expect_error<device_memory_error>([] { cuda::device_buffer<float> huge(std::size_t(1) << 45, "a test buffer"); },
                                    {"out of GPU memory allocating", "for a test buffer"});
  backend.synchronize();  // the stream is still usable
}

TEST(CudaBackend, UploadsEveryWeightOnce) {
  UNMASK_REQUIRE_DEVICE();
  const transformer_model& m = tiny_llada();
  transformer_forward<cuda_backend> forward(m);
  std::size_t expected = 0;
  std::vector<const void*> seen;
  auto count = [&](const tensor_ref& t) {
    if (std::find(seen.begin(), seen.end(), t.data) != seen.end()) return;
    seen.push_back(t.data);
    expected += std::size_t(t.shape.numel()) * sizeof(bfloat16);
  };
  const transformer_weights& w = m.weights();
  count(w.embedding), count(w.final_norm), count(w.head);
  for (const auto& l : w.layers)
    for (const tensor_ref* t : {&l.attn_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.mlp_norm, &l.gate_proj,
                                &l.up_proj, &l.down_proj})
      count(*t);
  EXPECT_EQ(forward.backend().weight_bytes(), expected);
}

// ---- logits ----

// Largest |a - b| and largest |a|.
struct difference {
  double max_abs = 0, max_value = 0;
  double relative() const { return max_value > 0 ? max_abs / max_value : max_abs; }
};

difference compare(const std::vector<float>& expected, const std::vector<float>& got) {
  difference d;
  EXPECT_EQ(expected.size(), got.size());
  for (std::size_t i = 0; i < std::min(expected.size(), got.size()); ++i) {
    EXPECT_TRUE(std::isfinite(got[i])) << "logit " << i;
    d.max_abs = std::max(d.max_abs, double(std::fabs(expected[i] - got[i])));
    d.max_value = std::max(d.max_value, double(std::fabs(expected[i])));
  }
  return d;
}

// Logits of `in` on a backend, downloaded; with `prefix_rows` > 0 the first
// call fills a cache with the whole canvas and a second call feeds the rows
// from prefix_rows on (offsets, selected rows), whose logits are returned.
template <class Backend>
std::vector<float> logits_on(const transformer_model& m, const std::vector<std::int32_t>& tokens,
                             const std::vector<std::int32_t>& lengths, std::int64_t seq_len, attention_mask mask,
                             std::int32_t prefix_rows = 0) {
  transformer_forward<Backend> forward(m);
  const std::int64_t vocab = m.config().vocab_size, batch = std::int64_t(lengths.size());
  typename Backend::template buffer<float> logits(std::size_t(batch * seq_len * vocab));
  std::vector<float> out;
  if (prefix_rows == 0) {
    forward({tokens.data(), batch, seq_len, lengths.data()}, mask, logits.data());
    out.resize(std::size_t(batch * seq_len * vocab));
  } else {
    kv_cache<Backend> cache(m.config(), batch, seq_len);
    forward({tokens.data(), batch, seq_len, lengths.data()}, mask, logits.data(), &cache);
    const std::int64_t width = seq_len - prefix_rows;
    std::vector<std::int32_t> block, offsets(std::size_t(batch), prefix_rows), block_lengths, rows;
    for (std::int64_t b = 0; b < batch; ++b) {
      for (std::int64_t i = 0; i < width; ++i) block.push_back(tokens[std::size_t(b * seq_len + prefix_rows + i)]);
      block_lengths.push_back(std::int32_t(lengths[std::size_t(b)] - prefix_rows));
      for (std::int32_t i = 0; i < block_lengths.back(); i += 2) rows.push_back(std::int32_t(b * width + i));
    }
    token_batch in{block.data(), batch, width, block_lengths.data(), offsets.data()};
    forward(in, mask, logits.data(), &cache, {rows.data(), std::int64_t(rows.size())});
    out.resize(rows.size() * std::size_t(vocab));
  }
  forward.backend().download(logits.data(), out.size(), out.data());
  return out;
}

template <class Backend>
void check_logits(double tolerance, const char* label) {
  const transformer_model& m = tiny_llada();
  const std::int64_t seq_len = 45;
  std::vector<std::int32_t> tokens(2 * seq_len);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = std::int32_t((i * 977 + 13) % 4000);
  for (std::int64_t i = 30; i < seq_len; ++i) tokens[std::size_t(seq_len + i)] = 4095;  // masks
  const std::vector<std::int32_t> lengths = {std::int32_t(seq_len), 38};
  struct variant {
    const char* name;
    attention_mask mask;
    std::int32_t prefix;
  };
  for (const variant& v : {variant{"full", attention_mask::full(), 0}, variant{"causal", attention_mask::causal(), 0},
                           variant{"block-causal 8", attention_mask::block_causal(8), 0},
                           variant{"cached block, selected rows", attention_mask::full(), 20}}) {
    const difference d = compare(logits_on<cpu_backend>(m, tokens, lengths, seq_len, v.mask, v.prefix),
                                 logits_on<Backend>(m, tokens, lengths, seq_len, v.mask, v.prefix));
    std::printf("  %s %s: max |error| %.3g, max |logit| %.3g, relative %.3g\n", label, v.name, d.max_abs, d.max_value,
                d.relative());
    EXPECT_LT(d.relative(), tolerance) << label << " " << v.name;
  }
}

TEST(CudaBackend, LogitsMatchTheCpuWithFp32Activations) {
  UNMASK_REQUIRE_DEVICE();
  check_logits<cuda_backend_f32>(1e-4, "fp32");
}

TEST(CudaBackend, LogitsMatchTheCpuWithBf16Activations) {
  UNMASK_REQUIRE_DEVICE();
  check_logits<cuda_backend>(4e-2, "bf16");
}

// The Qwen-layout families: q/k/v biases (Dream, Fast-dLLM v2), per-head q/k
// norms and a head_dim apart from d_model / heads (SDAR), shifted logits, a
// tied head; whole canvases and, against a cache, a block with selected rows.
template <class Backend>
void check_family_logits(double tolerance, const char* label) {
  for (const char* name : {"tiny_dream", "tiny_fast_dllm_v2", "tiny_sdar"}) {
    const transformer_model m = transformer_model::load(test::data_dir() + "/" + name);
    const std::int64_t seq_len = 24;
    std::vector<std::int32_t> tokens(2 * seq_len);
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = std::int32_t((i * 37 + 5) % 97);
    for (std::int64_t i = 16; i < seq_len; ++i) tokens[std::size_t(seq_len + i)] = 99;  // masks
    const std::vector<std::int32_t> lengths = {std::int32_t(seq_len), 21};
    const attention_mask mask = m.config().attention == trained_attention::block_causal
                                    ? attention_mask::block_causal(std::int32_t(m.config().attention_block))
                                    : attention_mask::full();
    for (std::int32_t prefix : {0, 8}) {
      const difference d = compare(logits_on<cpu_backend>(m, tokens, lengths, seq_len, mask, prefix),
                                   logits_on<Backend>(m, tokens, lengths, seq_len, mask, prefix));
      std::printf("  %s %s, prefix %d: relative %.3g\n", label, name, prefix, d.relative());
      EXPECT_LT(d.relative(), tolerance) << label << " " << name << " prefix " << prefix;
    }
  }
}

// The block-diffusion goldens (Fast-dLLM v2, SDAR; tools/reference_family_generate.py)
// decoded on the GPU with fp32 activations: every decision in them has a
// margin of at least 1e-5, far above the backends' logit differences.
TEST(CudaBackend, BlockDiffusionGoldensOnTheDevice) {
  UNMASK_REQUIRE_DEVICE();
  for (const char* file : {"fast_dllm_v2_goldens.json", "sdar_goldens.json"}) {
    std::ifstream in(test::data_dir() + "/decode/" + file);
    const nlohmann::json goldens = nlohmann::json::parse(in);
    const transformer_model m = transformer_model::load(test::data_dir() + "/" + goldens.at("model").get<std::string>());
    for (const auto& g : goldens.at("cases")) {
      block_diffusion_settings s;
      s.gen_length = g.at("gen_length");
      s.threshold = g.at("threshold");
      s.stop_at_eos = false;
      if (g.at("algorithm") == "fast_dllm_v2") {
        s.sub_block_length = g.at("sub_block_length");
      } else {
        s.rule = block_step_rule::counted;
        s.steps = g.at("steps");
        s.strategy = parse_counted_strategy(g.at("strategy"));
      }
      std::vector<decode_request> requests;
      for (const auto& p : g.at("prompts")) requests.push_back({p.get<std::vector<std::int32_t>>(), 0});
      const decode_output out = block_diffusion_decoder<cuda_backend_f32>(m, s).generate(requests);
      EXPECT_EQ(out.sequences[0].canvas, g.at("output")[0].get<std::vector<std::int32_t>>()) << g.at("name");
      EXPECT_EQ(out.forwards, g.at("nfe").get<std::int64_t>()) << g.at("name");
    }
  }
}

TEST(CudaBackend, FamilyLogitsMatchTheCpuWithFp32Activations) {
  UNMASK_REQUIRE_DEVICE();
  check_family_logits<cuda_backend_f32>(1e-4, "fp32");
}

TEST(CudaBackend, FamilyLogitsMatchTheCpuWithBf16Activations) {
  UNMASK_REQUIRE_DEVICE();
  check_family_logits<cuda_backend>(4e-2, "bf16");
}

// ---- decoding ----

// How a GPU decode compares with the CPU's.
struct comparison {
  std::int64_t positions = 0, differing = 0;
  bool explained = true;
  std::string detail;
};

// The key choose_token maximises for token v (temperature T: l / T + Gumbel).
float choice_key(const float* row, std::int32_t v, const sampling_settings& s, const counter_rng& rng,
                 const draw_site& site) {
  if (s.temperature <= 0.0f) return row[v];
  return row[v] * (1.0f / s.temperature) +
         rng.gumbel(random_purpose::token, site.sequence, site.step, site.position, std::uint32_t(v));
}

// One step re-run on both backends from the same canvas: logits of `rows`
// (canvas positions), each backend's token choices, and the largest
// differences between the backends.
struct rerun {
  std::vector<float> cpu_logits, gpu_logits;
  std::vector<token_choice> cpu, gpu;
  std::vector<draw_site> sites;
  double logit_delta = 0, confidence_delta = 0;
};

template <class Backend>
rerun rerun_step(const transformer_model& m, const std::vector<std::int32_t>& canvas, const std::vector<std::int32_t>& rows,
                 const sampling_settings& sampling, confidence_metric metric, const counter_rng& rng,
                 const std::vector<draw_site>& sites, attention_mask mask) {
  const std::int64_t vocab = m.config().vocab_size, count = std::int64_t(rows.size());
  const token_batch in{canvas.data(), 1, std::int64_t(canvas.size())};
  rerun r;
  r.cpu_logits.resize(std::size_t(count * vocab));
  r.gpu_logits.resize(r.cpu_logits.size());
  transformer_forward<cpu_backend> cpu(m);
  cpu(in, mask, r.cpu_logits.data(), nullptr, {rows.data(), count});
  transformer_forward<Backend> gpu(m);
  typename Backend::template buffer<float> device_logits(r.cpu_logits.size());
  gpu(in, mask, device_logits.data(), nullptr, {rows.data(), count});
  gpu.backend().download(device_logits.data(), r.gpu_logits.size(), r.gpu_logits.data());
  r.logit_delta = compare(r.cpu_logits, r.gpu_logits).max_abs;
  r.sites = sites;
  r.cpu.resize(rows.size());
  r.gpu.resize(rows.size());
  const std::int32_t excluded = std::int32_t(m.config().mask_token_id);
  cpu_backend{}.choose_tokens(r.cpu_logits.data(), count, vocab, sampling, metric, excluded, rng, r.sites.data(),
                              r.cpu.data());
  gpu.backend().choose_tokens(device_logits.data(), count, vocab, sampling, metric, excluded, rng, r.sites.data(),
                              r.gpu.data());
  for (std::size_t i = 0; i < rows.size(); ++i)
    r.confidence_delta = std::max(r.confidence_delta, double(std::fabs(r.cpu[i].confidence - r.gpu[i].confidence)));
  return r;
}

// Tokens a (the CPU decode's) and b (the GPU decode's) at row i differ: a
// near tie when, on the re-run's CPU logits, a beats b by at most twice the
// logit difference measured between the backends (scaled as the key).
bool token_near_tie(const rerun& r, std::size_t i, std::int32_t a, std::int32_t b, std::int64_t vocab,
                    const sampling_settings& s, const counter_rng& rng, std::string& detail) {
  const float* row = r.cpu_logits.data() + std::int64_t(i) * vocab;
  const double gap =
      double(choice_key(row, a, s, rng, r.sites[i])) - double(choice_key(row, b, s, rng, r.sites[i]));
  const double bound = 2.0 * r.logit_delta * (s.temperature > 0.0f ? 1.0 / s.temperature : 1.0) + 1e-5;
  detail += concat("position ", r.sites[i].position, ": CPU token ", a, ", GPU token ", b, ", CPU key margin ", gap,
                   " (near-tie bound ", bound, "); ");
  return gap <= bound;
}

template <class Backend>
comparison compare_diffusion(const diffusion_settings& s, const decode_request& request) {
  const transformer_model& m = tiny_llada();
  const std::int32_t mask = std::int32_t(m.config().mask_token_id);
  std::vector<std::vector<std::int32_t>> cpu_trace, gpu_trace;  // canvas after each step
  diffusion_decoder<cpu_backend> cpu(m, s);
  const decode_output cpu_out = cpu.generate({request}, [&](const decode_event& e) { cpu_trace.push_back(*e.canvas); });
  diffusion_decoder<Backend> gpu(m, s);
  const decode_output gpu_out = gpu.generate({request}, [&](const decode_event& e) { gpu_trace.push_back(*e.canvas); });
  comparison c;
  const auto& a = cpu_out.sequences[0].canvas;
  const auto& b = gpu_out.sequences[0].canvas;
  EXPECT_EQ(a.size(), b.size());
  EXPECT_EQ(std::count(b.begin(), b.end(), mask), 0) << "masks left in the GPU's canvas";
  c.positions = std::int64_t(a.size()) - std::int64_t(request.prompt.size());
  for (std::size_t p = request.prompt.size(); p < std::min(a.size(), b.size()); ++p) c.differing += a[p] != b[p];
  if (c.differing == 0) return c;
  // The first step after which the canvases differ, from the same canvas.
  std::size_t k = 0;
  while (k < std::min(cpu_trace.size(), gpu_trace.size()) && cpu_trace[k] == gpu_trace[k]) ++k;
  if (k == std::min(cpu_trace.size(), gpu_trace.size())) {
    c.explained = false;
    c.detail = "the traces agree step for step but the outputs differ";
    return c;
  }
  std::vector<std::int32_t> before = request.prompt;
  before.resize(a.size(), mask);
  if (k > 0) before = cpu_trace[k - 1];
  // The block being decoded: the first masked position's block.
  const std::int32_t prompt = std::int32_t(request.prompt.size()), length = s.layout.block_length;
  std::int32_t first = prompt;
  while (first < std::int32_t(before.size()) && before[std::size_t(first)] != mask) ++first;
  const std::int32_t begin = prompt + (first - prompt) / length * length;
  std::vector<std::int32_t> rows;
  for (std::int32_t p = begin; p < begin + length; ++p)
    if (before[std::size_t(p)] == mask) rows.push_back(p);
  const counter_rng rng{s.seed};
  std::vector<draw_site> sites;
  for (std::int32_t p : rows) sites.push_back({request.id, std::uint32_t(k), std::uint32_t(p)});
  const rerun r = rerun_step<Backend>(m, before, rows, s.sampling, s.confidence, rng, sites, s.attention);
  c.detail = concat("first divergence at step ", k, " (logits differ by up to ", r.logit_delta,
                    ", confidences by up to ", r.confidence_delta, "): ");
  bool explained = false;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::int32_t a = cpu_trace[k][std::size_t(rows[i])], b = gpu_trace[k][std::size_t(rows[i])];
    if (a != mask && b != mask && a != b)
      explained |= token_near_tie(r, i, a, b, m.config().vocab_size, s.sampling, rng, c.detail);
  }
  // Positions committed by one backend only: near tie when such a position's
  // CPU confidence is within twice the confidence difference of another
  // candidate's or of the threshold.
  const double bound = 2.0 * r.confidence_delta + 1e-6;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::size_t p = std::size_t(rows[i]);
    if ((cpu_trace[k][p] != mask) == (gpu_trace[k][p] != mask)) continue;
    double closest = std::fabs(double(r.cpu[i].confidence) - double(s.selection.tau));
    for (std::size_t j = 0; j < rows.size(); ++j)
      if (j != i) closest = std::min(closest, std::fabs(double(r.cpu[i].confidence) - double(r.cpu[j].confidence)));
    c.detail += concat("position ", p, " committed by one backend only, confidence ", r.cpu[i].confidence,
                       " within ", closest, " of a neighbour (bound ", bound, "); ");
    explained |= closest <= bound;
  }
  c.explained = explained;
  return c;
}

struct decode_case {
  const char* name;
  diffusion_settings settings;
};

std::vector<decode_case> decode_cases() {
  diffusion_settings top_k;
  top_k.layout = {32, 32, 32};
  diffusion_settings sampled = top_k;
  sampled.sampling.temperature = 1.0f;
  sampled.seed = 7;
  diffusion_settings threshold = top_k;
  threshold.selection = selection_rule::fast_dllm_threshold(0.9f);
  diffusion_settings margin = top_k;
  margin.layout = {32, 16, 16};
  margin.confidence = confidence_metric::margin;
  diffusion_settings block_causal = top_k;
  block_causal.layout = {32, 8, 16};
  block_causal.attention = attention_mask::block_causal(8);
  return {{"top-k, temperature 0", top_k},
          {"top-k, temperature 1, seed 7", sampled},
          {"threshold 0.9", threshold},
          {"margin, two blocks", margin},
          {"block-causal attention", block_causal}};
}

template <class Backend>
std::int64_t check_diffusion(const char* label, const std::vector<decode_case>& cases = decode_cases()) {
  std::int64_t positions = 0, differing = 0;
  for (const decode_case& dc : cases) {
    for (const decode_request& request : prompts()) {
      const comparison c = compare_diffusion<Backend>(dc.settings, request);
      positions += c.positions;
      differing += c.differing;
      if (c.differing)
        std::printf("  %s %s, prompt %u: %lld of %lld tokens differ; %s\n", label, dc.name, request.id,
                    static_cast<long long>(c.differing), static_cast<long long>(c.positions), c.detail.c_str());
      EXPECT_TRUE(c.explained) << label << " " << dc.name << ", prompt " << request.id << ": " << c.detail;
    }
  }
  std::printf("  %s diffusion: %lld of %lld generated tokens differ from the CPU's\n", label,
              static_cast<long long>(differing), static_cast<long long>(positions));
  ::testing::Test::RecordProperty(std::string(label) + "_differing_tokens", std::to_string(differing));
  return differing;
}

TEST(CudaBackend, DiffusionTokensEqualTheCpuWithFp32Activations) {
  UNMASK_REQUIRE_DEVICE();
  check_diffusion<cuda_backend_f32>("fp32");
}

TEST(CudaBackend, DiffusionTokensEqualTheCpuWithBf16Activations) {
  UNMASK_REQUIRE_DEVICE();
  check_diffusion<cuda_backend>("bf16");
}

template <class Backend>
std::int64_t check_autoregressive(const char* label, float temperature) {
  const transformer_model& m = tiny_ar();
  ar_settings s;
  s.max_new_tokens = 40;
  s.stop_at_eos = false;
  s.sampling.temperature = temperature;
  s.seed = 11;
  const std::vector<decode_request> requests = prompts();
  const decode_output cpu = ar_decoder<cpu_backend>(m, s).generate(requests);
  const decode_output gpu = ar_decoder<Backend>(m, s).generate(requests);  // the whole batch at once
  std::int64_t differing = 0;
  for (std::size_t q = 0; q < requests.size(); ++q) {
    const auto& a = cpu.sequences[q].canvas;
    const auto& b = gpu.sequences[q].canvas;
    EXPECT_EQ(a.size(), b.size());
    if (a.size() != b.size()) continue;
    std::size_t first = requests[q].prompt.size();
    while (first < a.size() && a[first] == b[first]) ++first;
    if (first == a.size()) continue;
    differing += std::int64_t(a.size() - first);
    // Re-run without a cache on the shared prefix (the decoders used one, in a
    // batch, so the re-run's logits differ from theirs by rounding too).
    const std::vector<std::int32_t> prefix(a.begin(), a.begin() + std::int64_t(first));
    const std::vector<std::int32_t> row = {std::int32_t(first) - 1};
    const counter_rng rng{s.seed};
    // The decoder keys the draw by the new token's index and position.
    const std::vector<draw_site> site = {
        {requests[q].id, std::uint32_t(first - requests[q].prompt.size()), std::uint32_t(first)}};
    const rerun r = rerun_step<Backend>(m, prefix, row, s.sampling, confidence_metric::max_prob, rng, site, s.attention);
    std::string detail;
    const bool tie = token_near_tie(r, 0, a[first], b[first], m.config().vocab_size, s.sampling, rng, detail);
    std::printf("  %s AR, T=%g, prompt %zu: tokens differ from token %zu on; %s\n", label, temperature, q,
                first - requests[q].prompt.size(), detail.c_str());
    EXPECT_TRUE(tie) << detail;
  }
  std::printf("  %s AR, T=%g: %lld generated tokens differ from the CPU's\n", label, temperature,
              static_cast<long long>(differing));
  return differing;
}

// The CPU backend with every GEMM output scaled by 1 +- 1e-2 (a fixed
// pattern): a stand-in for a backend that rounds differently, so the
// comparison above, divergences and near-tie analysis included, runs and is
// checked on machines without a GPU.
struct perturbed_cpu_backend : cpu_backend {
  void matmul_nt(const float* x, std::int64_t rows, const tensor_ref& w, std::int64_t n, float* y,
                 bool accumulate) const {
    cpu_backend::matmul_nt(x, rows, w, n, y, accumulate);
    for (std::int64_t i = 0; i < rows * n; ++i) y[i] *= (i * 2654435761u >> 7) & 1 ? 1.01f : 0.99f;
  }
};

TEST(CudaBackendHost, ComparisonExplainsAPerturbedBackendsDivergences) {
  std::vector<decode_case> cases = decode_cases();
  cases.erase(cases.begin() + 2, cases.end());  // greedy and sampled top-k
  const std::int64_t diffusion = check_diffusion<perturbed_cpu_backend>("perturbed CPU", cases);
  const std::int64_t ar = check_autoregressive<perturbed_cpu_backend>("perturbed CPU", 0.0f);
  EXPECT_GT(diffusion + ar, 0) << "the perturbation changed no token: the near-tie analysis was not exercised";
}

TEST(CudaBackend, AutoregressiveTokensEqualTheCpu) {
  UNMASK_REQUIRE_DEVICE();
  check_autoregressive<cuda_backend_f32>("fp32", 0.0f);
  check_autoregressive<cuda_backend_f32>("fp32", 1.0f);
  check_autoregressive<cuda_backend>("bf16", 0.0f);
}

// How many generated tokens two outputs of the same requests share (the
// second must be fully decoded), as `same` of `total`.
void count_equal_tokens(const decode_output& x, const decode_output& y, const std::vector<decode_request>& requests,
                        std::int64_t& same, std::int64_t& total) {
  same = total = 0;
  for (std::size_t q = 0; q < requests.size(); ++q) {
    const auto& a = x.sequences[q].canvas;
    const auto& b = y.sequences[q].canvas;
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::count(b.begin(), b.end(), std::int32_t(tiny_llada().config().mask_token_id)), 0);
    for (std::size_t p = requests[q].prompt.size(); p < a.size(); ++p) same += a[p] == b[p], ++total;
  }
}

TEST(CudaBackend, GuidedDecodingRunsAndFillsTheCanvas) {
  UNMASK_REQUIRE_DEVICE();
  diffusion_settings s;
  s.layout = {32, 32, 16};
  s.cfg_scale = 1.0f;
  s.cache.mode = cache_mode::prefix;
  const std::vector<decode_request> requests = prompts();
  const decode_output cpu = diffusion_decoder<cpu_backend>(tiny_llada(), s).generate(requests);
  const decode_output gpu = diffusion_decoder<cuda_backend_f32>(tiny_llada(), s).generate(requests);
  std::int64_t same = 0, total = 0;
  count_equal_tokens(cpu, gpu, requests, same, total);
  if (::testing::Test::HasFatalFailure()) return;
  EXPECT_EQ(gpu.forwards, cpu.forwards);
  std::printf("  fp32, guidance 1.0 with a prefix cache: %lld of %lld tokens equal the CPU's\n",
              static_cast<long long>(same), static_cast<long long>(total));
}

// ---- resident decoding ----

// The resident loop on the GPU against the step-by-step loop on the GPU
// (same kernels; the logits of unmasked rows and the vocabulary pass's
// variant may change the rounding, so near ties can flip and the agreement
// is reported), with the step captured as a CUDA graph and replayed.
TEST(CudaBackend, ResidentDecodingMatchesTheStepwiseLoop) {
  UNMASK_REQUIRE_DEVICE();
  const std::vector<decode_request> requests = prompts();
  diffusion_settings top_k;
  top_k.layout = {64, 32, 32};
  diffusion_settings threshold = top_k;
  threshold.selection = selection_rule::fast_dllm_threshold(0.9f);
  for (const diffusion_settings& s : {top_k, threshold}) {
    const decode_output stepwise = diffusion_decoder<cuda_backend_f32>(tiny_llada(), s).generate(requests);
    resident_decoder<cuda_backend_f32> resident(tiny_llada(), s);
    const decode_output got = resident.generate(requests);
    EXPECT_GT(resident.backend().step_graph_nodes(), std::size_t(20)) << "the step was not captured as a graph";
    std::int64_t same = 0, total = 0;
    count_equal_tokens(stepwise, got, requests, same, total);
    if (::testing::Test::HasFatalFailure()) return;
    if (s.selection.uses_schedule()) EXPECT_EQ(got.forwards, stepwise.forwards);
    std::printf("  resident vs stepwise (%s): %lld of %lld tokens equal, %lld vs %lld forwards, graph of %zu nodes\n",
                s.selection.uses_schedule() ? "top-k" : "threshold 0.9", static_cast<long long>(same),
                static_cast<long long>(total), static_cast<long long>(got.forwards),
                static_cast<long long>(stepwise.forwards), resident.backend().step_graph_nodes());
    // A flipped near tie changes the rest of its block; half the tokens is a floor
    // that only a broken loop misses (the exact check is the CPU test).
    EXPECT_GE(double(same), 0.5 * double(total)) << "resident decoding disagrees far beyond near ties";
  }
}

// Cached resident decoding on the GPU: each cache mode against the stepwise
// cached loop, the block's two kinds of step each captured as a graph.
TEST(CudaBackend, CachedResidentDecodingMatchesTheStepwiseLoop) {
  UNMASK_REQUIRE_DEVICE();
  const std::vector<decode_request> requests = prompts();
  diffusion_settings prefix;
  prefix.layout = {64, 32, 32};
  prefix.cache.mode = cache_mode::prefix;
  diffusion_settings dual = prefix;
  dual.cache.mode = cache_mode::dual;
  diffusion_settings dual_threshold = dual;
  dual_threshold.selection = selection_rule::fast_dllm_threshold(0.9f);
  diffusion_settings block = prefix;
  block.attention = attention_mask::block_causal(32);
  block.cache.mode = cache_mode::block_causal;
  for (const diffusion_settings& s : {prefix, dual, dual_threshold, block}) {
    const decode_output stepwise = diffusion_decoder<cuda_backend_f32>(tiny_llada(), s).generate(requests);
    resident_decoder<cuda_backend_f32> resident(tiny_llada(), s);
    const decode_output got = resident.generate(requests);
    // The cached step is replayed from a graph (the first step too where its
    // shape repeats across blocks).
    EXPECT_GE(resident.backend().step_graphs(), 1u);
    std::int64_t same = 0, total = 0;
    count_equal_tokens(stepwise, got, requests, same, total);
    if (::testing::Test::HasFatalFailure()) return;
    if (s.selection.uses_schedule()) EXPECT_EQ(got.forwards, stepwise.forwards);
    std::printf("  cached resident vs stepwise (%s%s): %lld of %lld tokens equal, %lld vs %lld forwards, %zu graphs\n",
                to_string(s.cache.mode), s.selection.uses_schedule() ? "" : ", threshold 0.9",
                static_cast<long long>(same), static_cast<long long>(total), static_cast<long long>(got.forwards),
                static_cast<long long>(stepwise.forwards), resident.backend().step_graphs());
    EXPECT_GE(double(same), 0.5 * double(total)) << "cached resident decoding disagrees far beyond near ties";
  }
}

// The step scheduler on the GPU: requests joining a running batch decode
// what the stepwise loop decodes for each alone on the GPU (near ties may
// flip between batch shapes: cuBLASLt picks kernels by shape).
TEST(CudaBackend, StepSchedulerMatchesTheStepwiseLoop) {
  UNMASK_REQUIRE_DEVICE();
  const std::vector<decode_request> requests = prompts();
  diffusion_settings s;
  s.layout = {64, 32, 32};
  step_scheduler<cuda_backend_f32> scheduler(tiny_llada(), {});
  std::vector<std::uint64_t> handles;
  for (const decode_request& r : requests) {
    handles.push_back(*scheduler.submit({r.prompt, r.id, s}));
    scheduler.step();  // each joins a batch already running
  }
  scheduler.drain();
  const auto finished = scheduler.take_finished();
  ASSERT_EQ(finished.size(), requests.size());
  decode_output got;
  for (const std::uint64_t h : handles)
    for (const auto& [handle, out] : finished)
      if (handle == h) got.sequences.push_back(out);
  decode_output stepwise;
  for (const decode_request& r : requests)
    stepwise.sequences.push_back(diffusion_decoder<cuda_backend_f32>(tiny_llada(), s).generate({r}).sequences[0]);
  std::int64_t same = 0, total = 0;
  count_equal_tokens(stepwise, got, requests, same, total);
  if (::testing::Test::HasFatalFailure()) return;
  std::printf("  step scheduler vs stepwise, one request at a time: %lld of %lld tokens equal\n",
              static_cast<long long>(same), static_cast<long long>(total));
  EXPECT_GE(double(same), 0.5 * double(total)) << "the scheduler disagrees far beyond near ties";
}

// A user's policy types (examples/) on the graphed resident path: the
// selection kernel instantiated for them decodes what the stepwise loop does.
TEST(CudaBackend, ResidentDecodingRunsAUserPolicy) {
  UNMASK_REQUIRE_DEVICE();
  const std::vector<decode_request> requests = prompts();
  diffusion_settings s;
  s.layout = {64, 32, 32};
  using policy = decoding_policy<example::halving_schedule, example::margin_gap_rule>;
  const policy p{{}, {0.05f}};
  const decode_output stepwise = diffusion_decoder<cuda_backend_f32, policy>(tiny_llada(), s, p).generate(requests);
  const decode_output got = resident_decoder<cuda_backend_f32, policy>(tiny_llada(), s, p).generate(requests);
  std::int64_t same = 0, total = 0;
  count_equal_tokens(stepwise, got, requests, same, total);
  if (::testing::Test::HasFatalFailure()) return;
  EXPECT_GE(double(same), 0.5 * double(total)) << "the user policy decodes differently on the resident path";
}

// A user's logits processor inside the GPU's vocabulary pass, stepwise and
// resident: a bias no logit can match makes its token every choice, and a
// ban keeps the token of the unbiased decode out.
TEST(CudaBackend, DecodingRunsAUserLogitsProcessor) {
  UNMASK_REQUIRE_DEVICE();
  const std::vector<decode_request> requests = prompts();
  diffusion_settings s;
  s.layout = {32, 16, 16};
  using policy = decoding_policy<count_schedule, selection_rule, example::logit_bias>;
  policy favour;
  favour.processor.add(61, 1e4f);
  for (const decode_output& out :
       {diffusion_decoder<cuda_backend_f32, policy>(tiny_llada(), s, favour).generate(requests),
        resident_decoder<cuda_backend_f32, policy>(tiny_llada(), s, favour).generate(requests)})
    for (const sequence_output& seq : out.sequences)
      EXPECT_EQ(std::count(seq.canvas.begin() + seq.prompt_length, seq.canvas.end(), 61), 32);
  const decode_output plain = diffusion_decoder<cuda_backend_f32>(tiny_llada(), s).generate(requests);
  const std::int32_t first = plain.sequences[0].canvas[std::size_t(plain.sequences[0].prompt_length)];
  s.eos_token_id = first;
  s.logits_eos_inf = true;  // the built-in processor, from the settings
  const decode_output banned = resident_decoder<cuda_backend_f32>(tiny_llada(), s).generate(requests);
  for (const sequence_output& seq : banned.sequences)
    EXPECT_EQ(std::count(seq.canvas.begin() + seq.prompt_length, seq.canvas.end(), first), 0);
}

// A confidence metric of one's own in the GPU's vocabulary pass: log p
// orders candidates as p does, so the resident decode commits what the
// built-in metric commits (up to near ties between the backends' logits).
TEST(CudaBackend, ResidentDecodingRunsAUserConfidenceMetric) {
  UNMASK_REQUIRE_DEVICE();
  const std::vector<decode_request> requests = prompts();
  diffusion_settings s;
  s.layout = {64, 32, 32};
  using policy = decoding_policy<count_schedule, selection_rule, token_ban_processor, test::log_probability>;
  const decode_output builtin = resident_decoder<cuda_backend_f32>(tiny_llada(), s).generate(requests);
  const decode_output logged = resident_decoder<cuda_backend_f32, policy>(tiny_llada(), s).generate(requests);
  std::int64_t same = 0, total = 0;
  count_equal_tokens(builtin, logged, requests, same, total);
  if (::testing::Test::HasFatalFailure()) return;
  // Rounding can turn a near tie of p into a tie of log p (or back), which
  // reorders a block from there on: nearly all tokens agree, not all.
  EXPECT_GE(double(same), 0.9 * double(total)) << "the metric decodes differently on the resident path";
}

// A token sampler of one's own on the resident path: a key that favours
// even ids makes every committed token even.
TEST(CudaBackend, ResidentDecodingRunsAUserSampler) {
  UNMASK_REQUIRE_DEVICE();
  const std::vector<decode_request> requests = prompts();
  diffusion_settings s;
  s.layout = {32, 16, 16};
  using policy = decoding_policy<count_schedule, selection_rule, token_ban_processor, confidence_metric,
                                 test::even_bonus>;
  for (const decode_output& out : {resident_decoder<cuda_backend_f32, policy>(tiny_llada(), s).generate(requests),
                                   diffusion_decoder<cuda_backend_f32, policy>(tiny_llada(), s).generate(requests)})
    for (const sequence_output& seq : out.sequences)
      for (std::size_t i = std::size_t(seq.prompt_length); i < seq.canvas.size(); ++i) EXPECT_EQ(seq.canvas[i] % 2, 0);
}

// ---- CUDA graphs ----

TEST(CudaBackend, CapturedStepReplaysTheEagerLogits) {
  UNMASK_REQUIRE_DEVICE();
  const transformer_model& m = tiny_llada();
  const std::int64_t seq_len = 40, vocab = m.config().vocab_size;
  transformer_forward<cuda_backend> forward(m);
  cuda_backend& backend = forward.backend();
  std::vector<std::int32_t> first(std::size_t(2 * seq_len)), second(first.size());
  for (std::size_t i = 0; i < first.size(); ++i) {
    first[i] = std::int32_t((i * 31 + 5) % 4000);
    second[i] = std::int32_t((i * 17 + 101) % 4000);
  }
  const std::vector<std::int32_t> lengths = {std::int32_t(seq_len), 33};
  std::vector<std::int32_t> rows;
  for (std::int32_t r = 8; r < 2 * seq_len; r += 3) rows.push_back(r);
  const std::int64_t count = std::int64_t(rows.size());
  cuda::device_buffer<float> logits(std::size_t(count * vocab));
  const attention_mask mask = attention_mask::full();
  auto eager = [&](const std::vector<std::int32_t>& tokens) {
    forward({tokens.data(), 2, seq_len, lengths.data()}, mask, logits.data(), nullptr, {rows.data(), count});
    std::vector<float> out(std::size_t(count * vocab));
    backend.download(logits.data(), out.size(), out.data());
    return out;
  };
  const std::vector<float> eager_first = eager(first), eager_second = eager(second);

  cuda::step_graph graph(backend.stream());
  forward.stage({first.data(), 2, seq_len, lengths.data()}, nullptr, {rows.data(), count});
  graph.capture([&] { forward.run_staged(mask, logits.data()); });
  EXPECT_GT(graph.nodes(), std::size_t(10));
  for (const auto* tokens : {&second, &first}) {
    cuda::check(cudaMemsetAsync(logits.data(), 0xff, logits.size() * sizeof(float), backend.stream()), "poison");
    forward.stage({tokens->data(), 2, seq_len, lengths.data()}, nullptr, {rows.data(), count});
    graph.replay();
    std::vector<float> replayed(std::size_t(count * vocab));
    backend.download(logits.data(), replayed.size(), replayed.data());
    const std::vector<float>& expected = tokens == &first ? eager_first : eager_second;
    ASSERT_EQ(replayed.size(), expected.size());
    std::size_t different = 0;
    for (std::size_t i = 0; i < replayed.size(); ++i) different += float_bits(replayed[i]) != float_bits(expected[i]);
    EXPECT_EQ(different, 0u) << "replayed logits differ from the eager ones";
  }
}

// A step that cannot be captured (a synchronisation inside it) runs eagerly,
// graphs stay off, and the backend says why; or, when asked, throws.
TEST(CudaBackend, FailedCaptureIsReportedAndTheStepRunsEagerly) {
  UNMASK_REQUIRE_DEVICE();
  cuda_backend backend;
  int ran = 0;
  auto step = [&] {
    ++ran;
    cuda::check(cudaStreamSynchronize(backend.stream()), "synchronising inside the step");
  };
  EXPECT_TRUE(backend.graph_failure().empty());
  for (int i = 0; i < 3; ++i) backend.run_step(step, 1, 1);
  // eager (first sight), the failed capture and its eager rerun, eager (graphs off)
  EXPECT_EQ(ran, 4);
  EXPECT_NE(backend.graph_failure().find("synchronising inside the step"), std::string::npos) << backend.graph_failure();
  EXPECT_EQ(backend.step_graph_nodes(), 0u);
  EXPECT_EQ(cudaStreamSynchronize(backend.stream()), cudaSuccess) << "the stream is left usable";

  cuda_backend_options options;
  options.graph_failure_throws = true;
  cuda_backend strict(options);
  auto strict_step = [&] { cuda::check(cudaStreamSynchronize(strict.stream()), "synchronising inside the step"); };
  strict.run_step(strict_step, 1, 1);
  EXPECT_THROW(strict.run_step(strict_step, 1, 1), device_error);
  EXPECT_TRUE(strict.graph_failure().empty());
}

}  // namespace
}  // namespace unmask
