// tests/cuda/buffers.hpp
//
// Test helpers for the CUDA kernels: an owning device array (allocate, upload,
// poison with 0xff bytes, which reads as NaN in float / half / bfloat16 and as
// -1 in int32, download), seeded random inputs of any element type, widening
// to float for the CPU reference, and the relative rounding unit of each type.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

#include "unmask/core/dtype.hpp"
#include "unmask/cuda/vector_io.hpp"

namespace unmask::test {

template <class T>
struct device_array {
  T* data = nullptr;
  std::size_t size = 0;

  device_array() = default;
  device_array(const device_array&) = delete;
  device_array& operator=(const device_array&) = delete;
  ~device_array() { release(); }

  void release() {
    if (data != nullptr) cudaFree(data);
    data = nullptr;
    size = 0;
  }
  cudaError_t allocate(std::size_t n) {
    release();
    size = n;
    return cudaMalloc(&data, (n > 0 ? n : 1) * sizeof(T));
  }
  cudaError_t upload(const std::vector<T>& host) {
    const cudaError_t e = allocate(host.size());
    if (e != cudaSuccess || host.empty()) return e;
    return cudaMemcpy(data, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  // Every byte 0xff: NaN for the floating types, -1 for int32.
  cudaError_t poison() { return cudaMemset(data, 0xff, (size > 0 ? size : 1) * sizeof(T)); }
  cudaError_t download(std::vector<T>& host) const {
    host.resize(size);
    if (size == 0) return cudaSuccess;
    return cudaMemcpy(host.data(), data, size * sizeof(T), cudaMemcpyDeviceToHost);
  }
};

// n normal(mean, scale) values rounded to T.
template <class T>
std::vector<T> random_elements(std::size_t n, std::uint32_t seed, float scale, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(mean, scale);
  std::vector<T> out(n);
  for (T& v : out) v = cuda::from_float<T>(normal(rng));
  return out;
}

template <class T>
std::vector<float> widen(const std::vector<T>& in) {
  std::vector<float> out(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) out[i] = to_float(in[i]);
  return out;
}

// Spacing of T relative to a value's magnitude, at most: 2^-(significand bits - 1).
template <class T>
constexpr double rounding_unit() {
  if constexpr (std::is_same_v<T, bfloat16>) return 1.0 / 128.0;
  else if constexpr (std::is_same_v<T, half>) return 1.0 / 1024.0;
  else return 1.0 / 8388608.0;
}

// The stored bits of an element, for exact comparisons (NaN included).
template <class T>
std::uint32_t bits_of(T v) {
  if constexpr (std::is_same_v<T, float>) return float_bits(v);
  else return v.bits;
}

template <class T>
const char* type_name() {
  if constexpr (std::is_same_v<T, bfloat16>) return "bf16";
  else if constexpr (std::is_same_v<T, half>) return "f16";
  else return "f32";
}

}  // namespace unmask::test
