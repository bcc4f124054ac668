// unmask/core/host_buffer.hpp
//
// An owning, 64-byte aligned array in host memory, move-only. Alignment to a
// cache line keeps vector loads aligned and stops two threads' rows from
// sharing a line. Elements are value-initialised (zero for arithmetic types).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

#include "unmask/core/error.hpp"
#include "unmask/core/tensor_view.hpp"

namespace unmask {

template <class T>
class host_buffer {
 public:
  static constexpr std::size_t alignment = 64;

  host_buffer() = default;
  explicit host_buffer(std::size_t count) { resize(count); }
  host_buffer(const host_buffer&) = delete;
  host_buffer& operator=(const host_buffer&) = delete;
  host_buffer(host_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  host_buffer& operator=(host_buffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~host_buffer() { release(); }

  // Reallocates to `count` zeroed elements (the old contents are dropped).
  void resize(std::size_t count) {
    release();
    if (count == 0) return;
    if (count > (std::size_t(-1) - alignment) / sizeof(T))
      throw argument_error(concat("host_buffer of ", count, " elements is too large"));
    const std::size_t bytes = (count * sizeof(T) + alignment - 1) / alignment * alignment;
    void* p = std::aligned_alloc(alignment, bytes);
    if (!p) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
    size_ = count;
    for (std::size_t i = 0; i < count; ++i) new (data_ + i) T();
  }

  // Grows to at least `count` elements; keeps the allocation when it is large enough.
  void reserve_at_least(std::size_t count) {
    if (count > size_) resize(count);
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

  // A row-major view of the first shape.numel() elements.
  tensor_view<T> view(const shape_t& shape) {
    if (std::size_t(shape.numel()) > size_)
      throw argument_error(concat("view of shape ", to_string(shape), " exceeds a buffer of ", size_, " elements"));
    return tensor_view<T>::contiguous(data_, shape);
  }

 private:
  void release() {
    if (data_) {
      for (std::size_t i = 0; i < size_; ++i) data_[i].~T();
      std::free(data_);
    }
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace unmask
