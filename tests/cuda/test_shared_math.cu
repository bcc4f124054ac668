// The host/device functions the CUDA backend shares with the CPU backend
// (dtype conversions, the attention mask predicate, rotary angles) give the
// same bits on the device as on the host.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cuda/device.hpp"
#include "unmask/core/dtype.hpp"
#include "unmask/model/attention_mask.hpp"
#include "unmask/model/rotary.hpp"

namespace unmask {
namespace {

__global__ void convert_kernel(const float* in, std::uint16_t* bf, std::uint16_t* hf, float* back, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  bf[i] = to_bfloat16(in[i]).bits;
  hf[i] = to_half(in[i]).bits;
  back[i] = to_float(half{hf[i]}) + to_float(bfloat16{bf[i]});
}

__global__ void mask_kernel(attention_mask mask, int count, unsigned char* allowed, std::int64_t* ends) {
  const int q = blockIdx.x, k = threadIdx.x;
  if (q >= count || k >= count) return;
  allowed[q * count + k] = mask.allows(q, k);
  if (k == 0) ends[q] = mask.key_end(q, count);
}

TEST(CudaSharedMath, ConversionsMatchHost) {
  UNMASK_REQUIRE_DEVICE();
  std::mt19937 rng(1);
  std::uniform_int_distribution<std::uint32_t> bits;
  const int n = 1 << 16;
  std::vector<float> in(n);
  for (float& f : in) f = bits_float(bits(rng));
  float *d_in, *d_back;
  std::uint16_t *d_bf, *d_hf;
  UNMASK_CUDA_OK(cudaMalloc(&d_in, n * sizeof(float)));
  UNMASK_CUDA_OK(cudaMalloc(&d_back, n * sizeof(float)));
  UNMASK_CUDA_OK(cudaMalloc(&d_bf, n * 2));
  UNMASK_CUDA_OK(cudaMalloc(&d_hf, n * 2));
  UNMASK_CUDA_OK(cudaMemcpy(d_in, in.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  convert_kernel<<<(n + 255) / 256, 256>>>(d_in, d_bf, d_hf, d_back, n);
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<std::uint16_t> bf(n), hf(n);
  UNMASK_CUDA_OK(cudaMemcpy(bf.data(), d_bf, n * 2, cudaMemcpyDeviceToHost));
  UNMASK_CUDA_OK(cudaMemcpy(hf.data(), d_hf, n * 2, cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(bf[i], to_bfloat16(in[i]).bits) << in[i];
    ASSERT_EQ(hf[i], to_half(in[i]).bits) << in[i];
  }
  cudaFree(d_in);
  cudaFree(d_back);
  cudaFree(d_bf);
  cudaFree(d_hf);
}

TEST(CudaSharedMath, AttentionMaskMatchesHost) {
  UNMASK_REQUIRE_DEVICE();
  const int count = 37;
  unsigned char* d_allowed;
  std::int64_t* d_ends;
  UNMASK_CUDA_OK(cudaMalloc(&d_allowed, count * count));
  UNMASK_CUDA_OK(cudaMalloc(&d_ends, count * sizeof(std::int64_t)));
  for (attention_mask m : {attention_mask::full(), attention_mask::causal(), attention_mask::block_causal(8)}) {
    mask_kernel<<<count, count>>>(m, count, d_allowed, d_ends);
    UNMASK_CUDA_OK(cudaDeviceSynchronize());
    std::vector<unsigned char> allowed(count * count);
    std::vector<std::int64_t> ends(count);
    UNMASK_CUDA_OK(cudaMemcpy(allowed.data(), d_allowed, allowed.size(), cudaMemcpyDeviceToHost));
    UNMASK_CUDA_OK(cudaMemcpy(ends.data(), d_ends, ends.size() * sizeof(std::int64_t), cudaMemcpyDeviceToHost));
    for (int q = 0; q < count; ++q) {
      EXPECT_EQ(ends[q], m.key_end(q, count));
      for (int k = 0; k < count; ++k) EXPECT_EQ(bool(allowed[q * count + k]), m.allows(q, k));
    }
  }
  cudaFree(d_allowed);
  cudaFree(d_ends);
}

__global__ void rope_kernel(float* angles, int positions, int head_dim, float theta) {
  const int p = blockIdx.x, i = threadIdx.x;
  if (p < positions && i < head_dim / 2) angles[p * (head_dim / 2) + i] = rope_angle(p, i, head_dim, theta);
}

TEST(CudaSharedMath, RopeAnglesAgreeWithHost) {
  UNMASK_REQUIRE_DEVICE();
  const int positions = 512, hd = 128;
  const float theta = 500000.0f;
  float* d;
  UNMASK_CUDA_OK(cudaMalloc(&d, positions * hd / 2 * sizeof(float)));
  rope_kernel<<<positions, hd / 2>>>(d, positions, hd, theta);
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<float> got(positions * hd / 2);
  UNMASK_CUDA_OK(cudaMemcpy(got.data(), d, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
  // powf on the device is within 2 ulp of the host's, so compare relatively.
  for (int p = 0; p < positions; ++p)
    for (int i = 0; i < hd / 2; ++i)
      EXPECT_NEAR(got[p * hd / 2 + i], rope_angle(p, i, hd, theta), 1e-6f * (1 + rope_angle(p, i, hd, theta)));
  cudaFree(d);
}

}  // namespace
}  // namespace unmask
