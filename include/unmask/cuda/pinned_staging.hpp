// unmask/cuda/pinned_staging.hpp
//
// Page-locked host memory for the CUDA backend's per-step transfers. A copy
// from pageable memory makes the driver stage it through a pinned buffer of
// its own and returns only when the data has left the caller's memory; a
// copy from pinned memory is one DMA the host does not wait for. The backend
// uploads a step's inputs through pinned_ring: the caller's bytes are copied
// into the next of a few pinned slots and sent from there, and a slot is
// reused only after the copy that read it has run (an event recorded behind
// each copy, waited for before the slot is overwritten), so the host does not
// stall while the device works through the previous step. Downloads land in
// a pinned_buffer. Slots only grow. Not for captured steps: a copy recorded
// into a graph would read the slot when replayed, after later uploads had
// changed it (the backend checks and falls back to a pageable copy, which
// then fails the capture loudly).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "unmask/cuda/error.hpp"

namespace unmask::cuda {

// An owning, growing page-locked host array (contents dropped on growth).
class pinned_buffer {
 public:
  pinned_buffer() = default;
  pinned_buffer(const pinned_buffer&) = delete;
  pinned_buffer& operator=(const pinned_buffer&) = delete;
  ~pinned_buffer() { release(); }

  void reserve_at_least(std::size_t bytes, const std::string& what) {
    if (bytes <= bytes_) return;
    release();
    check(cudaMallocHost(&data_, bytes), concat("allocating ", bytes, " bytes of pinned host memory for ", what));
    bytes_ = bytes;
  }
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void release() {
    if (data_) cudaFreeHost(data_);
    data_ = nullptr;
    bytes_ = 0;
  }
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// Host -> device copies through a ring of pinned slots.
class pinned_ring {
 public:
  static constexpr int slots = 4;

  pinned_ring() = default;
  pinned_ring(const pinned_ring&) = delete;
  pinned_ring& operator=(const pinned_ring&) = delete;
  ~pinned_ring() {
    for (slot& s : slots_)
      if (s.done) cudaEventDestroy(s.done);
  }

  // Enqueues a copy of `bytes` from host `src` to device `dst` on `stream`;
  // `src` may be changed as soon as this returns.
  cudaError_t copy_to_device(void* dst, const void* src, std::size_t bytes, cudaStream_t stream) {
    slot& s = slots_[next_];
    next_ = (next_ + 1) % slots;
    if (s.done) {
      const cudaError_t waited = cudaEventSynchronize(s.done);  // the copy that last read this slot has run
      if (waited != cudaSuccess) return waited;
    } else {
      const cudaError_t created = cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming);
      if (created != cudaSuccess) return created;
    }
    try {
      s.memory.reserve_at_least(bytes, "upload staging");
    } catch (const device_error& e) {
      return cudaError_t(e.code());
    }
    std::memcpy(s.memory.data(), src, bytes);
    const cudaError_t copied = cudaMemcpyAsync(dst, s.memory.data(), bytes, cudaMemcpyHostToDevice, stream);
    if (copied != cudaSuccess) return copied;
    return cudaEventRecord(s.done, stream);
  }

 private:
  struct slot {
    pinned_buffer memory;
    cudaEvent_t done = nullptr;
  };
  slot slots_[slots];
  int next_ = 0;
};

}  // namespace unmask::cuda
