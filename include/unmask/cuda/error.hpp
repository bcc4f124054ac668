// unmask/cuda/error.hpp
//
// CUDA and cuBLAS failures as exceptions. The kernels' launchers return a
// cudaError_t (cuBLASLt a cublasStatus_t) so they can be used from any error
// model; the CUDA backend, which runs the model, turns a failure into a
// device_error whose message names the operation ("CUDA error in attention
// (layer 3): an illegal memory access was encountered"), and a failed
// allocation into device_memory_error, which also says how many bytes were
// asked for and how many were free. Kernels run asynchronously: an error in a
// kernel can surface at a later call, whose name the message then carries;
// the backend's `synchronous` setting synchronises after every operation so
// the message names the operation that failed (slow; for debugging).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "unmask/core/error.hpp"

namespace unmask {

namespace cuda {

// Throws device_error naming `operation` unless `status` is cudaSuccess. A
// sticky error (the context is unusable afterwards) says so.
inline void check(cudaError_t status, const std::string& operation) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so later calls are not blamed for it
  std::string message = concat("CUDA error in ", operation, ": ", cudaGetErrorString(status), " (",
                               cudaGetErrorName(status), ")");
  if (status == cudaErrorMemoryAllocation) throw device_memory_error(message, int(status));
  if (status == cudaErrorNotSupported) message += "; the operation does not support these settings on the GPU";
  throw device_error(message, int(status));
}

inline void check(cublasStatus_t status, const std::string& operation) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  const std::string message =
      concat("cuBLAS error in ", operation, ": ", cublasLtGetStatusString(status), " (", cublasLtGetStatusName(status), ")");
  if (status == CUBLAS_STATUS_ALLOC_FAILED) throw device_memory_error(message, int(status));
  throw device_error(message, int(status));
}

// cudaMalloc that throws device_memory_error naming what the memory was for.
inline void* allocate(std::size_t bytes, const std::string& what) {
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes > 0 ? bytes : 1);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw device_memory_error(concat("out of GPU memory allocating ", bytes, " bytes for ", what, " (", free_bytes,
                                     " of ", total_bytes, " bytes free)"),
                              int(status));
  }
  check(status, concat("cudaMalloc of ", bytes, " bytes for ", what));
  return p;
}

}  // namespace cuda
}  // namespace unmask
