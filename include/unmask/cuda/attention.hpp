// unmask/cuda/attention.hpp
//
// Scaled dot-product attention, softmax(q k^T / sqrt(head_dim)) v, with the
// geometry of unmask::cpu::attention (attention_shape, attention_extents,
// attention_mask: every mask, grouped-query heads, queries decoded against
// a longer cached key range, per-sequence lengths and K/V slots). This header
// picks the kernel: the tensor-core FlashAttention-2 kernel
// (flash_attention.hpp) for half and bfloat16 with head_dim 32, 64, 96 or
// 128, 16-byte aligned buffers and a GPU of compute capability 8.0 or newer;
// the fp32-unit kernel (attention_reference.hpp) otherwise, fp32 always.
// Few-query calls (q_len <= 64) split their keys across blocks when given a
// workspace of attention_workspace_bytes(s) (0 when they do not split).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "unmask/cuda/attention_reference.hpp"
#include "unmask/cuda/flash_attention.hpp"
#include "unmask/model/attention_mask.hpp"

namespace unmask::cuda {

// Device bytes the call may use as workspace (0: none needed).
template <class T>
std::size_t attention_workspace_bytes(const attention_shape& s) {
  if constexpr (!mma::is_tile_element_v<T>) {
    return 0;
  } else {
    return flash_head_dim_supported(s.head_dim) ? flash_workspace_bytes(s) : 0;
  }
}

// out = attention(q, k, v); every extents pointer is a device pointer or
// null; out must not overlap q, k or v. The argument checks and errors of
// attention_reference. `workspace` may be null (no key splits).
template <class T>
cudaError_t attention(const T* q, const T* k, const T* v, T* out, const attention_shape& s,
                      const attention_extents& e, attention_mask mask, void* workspace, std::size_t workspace_bytes,
                      cudaStream_t stream) {
  static_assert(is_element_v<T>, "element type must be float, unmask::half or unmask::bfloat16");
  if (!detail::attention_sizes_ok(s, mask)) return cudaErrorInvalidValue;
  if (s.batch == 0 || s.q_len == 0) return cudaSuccess;
  if (q == nullptr || k == nullptr || v == nullptr || out == nullptr) return cudaErrorInvalidValue;
  if constexpr (mma::is_tile_element_v<T>)  // checked once: the device query is not repeated
    if (flash_attention_applies(q, k, v, out, s))
      return detail::run_flash_attention(q, k, v, out, s, e, mask, workspace, workspace_bytes, stream);
  return attention_reference(q, k, v, out, s, e, mask, stream);
}

template <class T>
cudaError_t attention(const T* q, const T* k, const T* v, T* out, const attention_shape& s,
                      const attention_extents& e, attention_mask mask, cudaStream_t stream) {
  return attention(q, k, v, out, s, e, mask, nullptr, 0, stream);
}

}  // namespace unmask::cuda
