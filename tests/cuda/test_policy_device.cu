// The policy and schedule value types are host/device code: the CUDA
// backend's selection and sampling kernels will call them unchanged. This
// test runs them inside a kernel and compares with the host: Philox draws,
// vocabulary statistics (pushed per thread and merged), selection counts,
// count schedules, noise schedules and ReMDM rates.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cuda/device.hpp"
#include "unmask/policy/confidence.hpp"
#include "unmask/policy/remasking.hpp"
#include "unmask/policy/selection.hpp"
#include "unmask/policy/vocab_stats.hpp"
#include "unmask/random/philox.hpp"
#include "unmask/schedule/count_schedule.hpp"
#include "unmask/schedule/noise_schedule.hpp"

namespace unmask {
namespace {

__global__ void philox_kernel(std::uint32_t* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = counter_rng{0x1234567890abcdefull}.bits(random_purpose::token, 3, 5, std::uint32_t(i / 7), std::uint32_t(i));
}

TEST(CudaPolicy, PhiloxMatchesHost) {
  UNMASK_REQUIRE_DEVICE();
  const int n = 4096;
  std::uint32_t* d;
  UNMASK_CUDA_OK(cudaMalloc(&d, n * sizeof(std::uint32_t)));
  philox_kernel<<<n / 256, 256>>>(d, n);
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<std::uint32_t> got(n);
  UNMASK_CUDA_OK(cudaMemcpy(got.data(), d, n * sizeof(std::uint32_t), cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(got[i], counter_rng{0x1234567890abcdefull}.bits(random_purpose::token, 3, 5, std::uint32_t(i / 7), std::uint32_t(i)));
  cudaFree(d);
}

// One block: each thread pushes a strided slice, thread 0 merges in order.
__global__ void stats_kernel(const float* logits, int vocab, vocab_stats* out) {
  __shared__ vocab_stats partial[128];
  vocab_stats mine;
  for (int v = threadIdx.x; v < vocab; v += blockDim.x) mine.push(logits[v], v);
  partial[threadIdx.x] = mine;
  __syncthreads();
  if (threadIdx.x == 0) {
    vocab_stats all;
    for (int t = 0; t < blockDim.x; ++t) all.merge(partial[t]);
    *out = all;
  }
}

TEST(CudaPolicy, VocabStatsMatchHost) {
  UNMASK_REQUIRE_DEVICE();
  const int vocab = 126464;
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(vocab);
  for (float& l : logits) l = normal(rng);
  float* d_logits;
  vocab_stats* d_out;
  UNMASK_CUDA_OK(cudaMalloc(&d_logits, vocab * sizeof(float)));
  UNMASK_CUDA_OK(cudaMalloc(&d_out, sizeof(vocab_stats)));
  UNMASK_CUDA_OK(cudaMemcpy(d_logits, logits.data(), vocab * sizeof(float), cudaMemcpyHostToDevice));
  stats_kernel<<<1, 128>>>(d_logits, vocab, d_out);
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  vocab_stats got;
  UNMASK_CUDA_OK(cudaMemcpy(&got, d_out, sizeof(vocab_stats), cudaMemcpyDeviceToHost));
  vocab_stats host;
  for (int v = 0; v < vocab; ++v) host.push(logits[v], v);
  EXPECT_EQ(got.argmax, host.argmax);
  EXPECT_EQ(got.max_logit, host.max_logit);
  EXPECT_EQ(got.second_logit, host.second_logit);
  EXPECT_NEAR(got.log_sum_exp(), host.log_sum_exp(), 1e-4f);
  EXPECT_NEAR(got.negative_entropy(), host.negative_entropy(), 1e-3f);
  cudaFree(d_logits);
  cudaFree(d_out);
}

struct policy_probe {
  std::int32_t counts[6];
  std::int32_t schedule[3];
  float reveal, remdm_sigma, remdm_reveal;
};

__global__ void policy_kernel(const float* sorted, int m, policy_probe* out) {
  const selection_rule rules[6] = {selection_rule::top_k(), selection_rule::fast_dllm_threshold(0.5f),
                                   selection_rule::dinfer_threshold(0.5f), selection_rule::fast_dllm_factor(1.0f),
                                   selection_rule::entropy_bounded(0.3f), selection_rule::dream_alg_temp(1.0f)};
  for (int r = 0; r < 6; ++r) out->counts[r] = rules[r].commit_count(sorted, m, 3, confidence_metric::max_prob);
  out->schedule[0] = count_schedule{count_schedule_kind::llada_even, 1e-3f}.count(1, 4, 10, 7);
  out->schedule[1] = count_schedule{count_schedule_kind::dream, 1e-3f}.count(1, 4, 24, 19);
  out->schedule[2] = count_schedule{count_schedule_kind::llama_cpp, 1e-3f}.count(0, 4, 24, 24);
  noise_schedule cosine;
  cosine.kind = noise_kind::cosine;
  out->reveal = cosine.reveal_probability(3, 10);
  remdm_settings remdm;
  remdm.strategy = remask_strategy::cap;
  out->remdm_sigma = remdm.sigma(0.5f, 0.5f, 0.6f);
  out->remdm_reveal = remdm_reveal_probability(0.5f, 0.6f, out->remdm_sigma);
}

TEST(CudaPolicy, SelectionAndSchedulesMatchHost) {
  UNMASK_REQUIRE_DEVICE();
  const std::vector<float> sorted = {0.95f, 0.8f, 0.6f, 0.45f, 0.2f, 0.1f};
  float* d_sorted;
  policy_probe* d_out;
  UNMASK_CUDA_OK(cudaMalloc(&d_sorted, sorted.size() * sizeof(float)));
  UNMASK_CUDA_OK(cudaMalloc(&d_out, sizeof(policy_probe)));
  UNMASK_CUDA_OK(cudaMemcpy(d_sorted, sorted.data(), sorted.size() * sizeof(float), cudaMemcpyHostToDevice));
  policy_kernel<<<1, 1>>>(d_sorted, int(sorted.size()), d_out);
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  policy_probe got;
  UNMASK_CUDA_OK(cudaMemcpy(&got, d_out, sizeof(policy_probe), cudaMemcpyDeviceToHost));
  const selection_rule rules[6] = {selection_rule::top_k(), selection_rule::fast_dllm_threshold(0.5f),
                                   selection_rule::dinfer_threshold(0.5f), selection_rule::fast_dllm_factor(1.0f),
                                   selection_rule::entropy_bounded(0.3f), selection_rule::dream_alg_temp(1.0f)};
  for (int r = 0; r < 6; ++r)
    EXPECT_EQ(got.counts[r], rules[r].commit_count(sorted.data(), int(sorted.size()), 3, confidence_metric::max_prob)) << r;
  EXPECT_EQ(got.schedule[0], (count_schedule{count_schedule_kind::llada_even, 1e-3f}.count(1, 4, 10, 7)));
  EXPECT_EQ(got.schedule[1], (count_schedule{count_schedule_kind::dream, 1e-3f}.count(1, 4, 24, 19)));
  EXPECT_EQ(got.schedule[2], (count_schedule{count_schedule_kind::llama_cpp, 1e-3f}.count(0, 4, 24, 24)));
  noise_schedule cosine;
  cosine.kind = noise_kind::cosine;
  EXPECT_NEAR(got.reveal, cosine.reveal_probability(3, 10), 1e-6f);
  EXPECT_FLOAT_EQ(got.remdm_sigma, 0.04f);
  EXPECT_NEAR(got.remdm_reveal, remdm_reveal_probability(0.5f, 0.6f, 0.04f), 1e-6f);
  cudaFree(d_sorted);
  cudaFree(d_out);
}

// count(step, steps, masks, masks) for every steps <= 64, step < steps and
// masks <= 1024: one thread per (steps, step, masks).
__global__ void schedule_kernel(count_schedule schedule, std::int32_t* out) {
  const std::int32_t masks = std::int32_t(blockIdx.x * blockDim.x + threadIdx.x);
  const std::int32_t steps = std::int32_t(blockIdx.y) + 1, step = std::int32_t(blockIdx.z);
  if (masks > 1024 || step >= steps) return;
  out[(std::int64_t(steps - 1) * 64 + step) * 1025 + masks] = schedule.count(step, steps, masks, masks);
}

// The float schedules round every product and sum as the host does (nvcc
// would fuse start + step * i into an fma and change a count by one for a
// few (step, masks) pairs), so the counts are the host's exactly.
TEST(CudaPolicy, CountSchedulesMatchHostExhaustively) {
  UNMASK_REQUIRE_DEVICE();
  const std::size_t n = std::size_t(64) * 64 * 1025;
  std::int32_t* d;
  UNMASK_CUDA_OK(cudaMalloc(&d, n * sizeof(std::int32_t)));
  for (const count_schedule_kind kind : {count_schedule_kind::dream, count_schedule_kind::llama_cpp}) {
    const count_schedule schedule{kind, 1e-3f};
    UNMASK_CUDA_OK(cudaMemset(d, 0xff, n * sizeof(std::int32_t)));
    schedule_kernel<<<dim3(5, 64, 64), 256>>>(schedule, d);
    UNMASK_CUDA_OK(cudaDeviceSynchronize());
    std::vector<std::int32_t> got(n);
    UNMASK_CUDA_OK(cudaMemcpy(got.data(), d, n * sizeof(std::int32_t), cudaMemcpyDeviceToHost));
    std::int64_t different = 0;
    for (std::int32_t steps = 1; steps <= 64; ++steps)
      for (std::int32_t step = 0; step < steps; ++step)
        for (std::int32_t masks = 0; masks <= 1024; ++masks)
          different += got[(std::size_t(steps - 1) * 64 + std::size_t(step)) * 1025 + std::size_t(masks)] !=
                       schedule.count(step, steps, masks, masks);
    EXPECT_EQ(different, 0) << (kind == count_schedule_kind::dream ? "dream" : "llama_cpp");
  }
  cudaFree(d);
}

}  // namespace
}  // namespace unmask
