// unmask/cuda/guidance.hpp
//
// Classifier-free guidance over logits on the GPU (Ho and Salimans 2022, as
// LLaDA's generate applies it): a guided batch holds the conditional rows
// first and the unconditional rows (prompt masked) second, and
//   logits[i] = guided_logit(cond[i], uncond[i], scale) = u + (scale + 1)(c - u)
// for the first `count` elements, in place, with the same host/device
// function as the CPU loop (unmask/policy/guidance.hpp); the two agree to a
// rounding or two (nvcc may fuse the multiply-add).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "unmask/cuda/vector_io.hpp"
#include "unmask/policy/guidance.hpp"

namespace unmask::cuda {

inline constexpr int guidance_block = 256;

__global__ void guidance_kernel(float* logits, std::int64_t count, float scale) {
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride)
    logits[i] = guided_logit(logits[i], logits[count + i], scale);
}

// logits (2 * count): the first count elements become the guided logits.
// Returns cudaErrorInvalidValue for a null pointer, a negative count or a
// scale that is negative or not finite, else the launch error.
inline cudaError_t apply_guidance(float* logits, std::int64_t count, float scale, cudaStream_t stream) {
  if (count < 0 || !(scale >= 0.0f) || !(scale < INFINITY)) return cudaErrorInvalidValue;
  if (count == 0) return cudaSuccess;
  if (!logits) return cudaErrorInvalidValue;
  std::int64_t blocks = (count + guidance_block - 1) / guidance_block;
  if (blocks > 65535) blocks = 65535;
  guidance_kernel<<<unsigned(blocks), guidance_block, 0, stream>>>(logits, count, scale);
  return launch_result();
}

}  // namespace unmask::cuda
