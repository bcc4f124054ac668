// unmask/cuda/device_buffer.hpp
//
// An owning array in GPU memory, move-only, the CUDA backend's twin of
// unmask::host_buffer: the model's activations, K/V caches and staged inputs
// live in these. It has the members the backend-generic code uses (resize,
// reserve_at_least, data, size); copies to and from the host are the
// backend's business, since they go through its stream. Allocation failures
// throw device_memory_error naming the buffer; new memory is zeroed (and the
// device synchronised), so a fresh K/V cache or scratch buffer never holds
// NaN bit patterns. Allocation happens outside the decode loop's steady
// state: buffers only grow, and a CUDA graph never allocates.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "unmask/cuda/error.hpp"

namespace unmask::cuda {

template <class T>
class device_buffer {
 public:
  device_buffer() = default;
  explicit device_buffer(std::size_t count, std::string name = "a device buffer") : name_(std::move(name)) {
    resize(count);
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  device_buffer(device_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)), name_(std::move(other.name_)) {}
  device_buffer& operator=(device_buffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      name_ = std::move(other.name_);
    }
    return *this;
  }
  ~device_buffer() { release(); }

  // Reallocates to `count` zeroed elements (the old contents are dropped).
  void resize(std::size_t count) {
    release();
    if (count == 0) return;
    data_ = static_cast<T*>(allocate(count * sizeof(T), name_));
    size_ = count;
    // Zeroed before returning: the backend's stream does not wait for the
    // legacy default stream, so an asynchronous memset could land after the
    // first kernel that writes the buffer.
    check(cudaMemset(data_, 0, count * sizeof(T)), concat("zeroing ", name_));
    check(cudaDeviceSynchronize(), concat("zeroing ", name_));
  }

  // Grows to at least `count` elements; keeps the allocation when it is large
  // enough (so pointers captured in a CUDA graph stay valid).
  void reserve_at_least(std::size_t count) {
    if (count > size_) resize(count);
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  void release() {
    if (data_) cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::string name_ = "a device buffer";
};

}  // namespace unmask::cuda
