// unmask/core/tensor_view.hpp
//
// A non-owning, strided view of up to four dimensions over memory that lives
// elsewhere (a memory-mapped checkpoint, a host buffer, device memory). Shapes
// and strides are in elements, outermost first; `contiguous` builds the usual
// row-major strides. Views are trivially copyable so they can be passed to CUDA
// kernels by value. `tensor_ref` is the type-erased form used for checkpoint
// tensors, whose element type is only known at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "unmask/core/config.hpp"
#include "unmask/core/dtype.hpp"
#include "unmask/core/error.hpp"

namespace unmask {

inline constexpr int max_rank = 4;

// A shape of rank <= 4 with its element count.
struct shape_t {
  int rank = 0;
  std::int64_t dims[max_rank] = {0, 0, 0, 0};

  shape_t() = default;
  shape_t(std::initializer_list<std::int64_t> list) {
    if (list.size() > std::size_t(max_rank)) throw argument_error(concat("shape of rank ", list.size(), " exceeds the maximum rank ", max_rank));
    for (std::int64_t d : list) {
      if (d < 0) throw argument_error(concat("shape has a negative dimension ", d));
      dims[rank++] = d;
    }
  }

  UNMASK_HOST_DEVICE std::int64_t operator[](int i) const { return dims[i]; }
  UNMASK_HOST_DEVICE std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  friend bool operator==(const shape_t& a, const shape_t& b) {
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; ++i)
      if (a.dims[i] != b.dims[i]) return false;
    return true;
  }
  friend bool operator!=(const shape_t& a, const shape_t& b) { return !(a == b); }
};

// "[4096, 128]"
inline std::string to_string(const shape_t& s) {
  std::string out = "[";
  for (int i = 0; i < s.rank; ++i) out += (i ? ", " : "") + std::to_string(s.dims[i]);
  return out + "]";
}

template <class T>
struct tensor_view {
  T* data = nullptr;
  shape_t shape;
  std::int64_t strides[max_rank] = {0, 0, 0, 0};

  // Row-major view over `count` contiguous elements.
  static tensor_view contiguous(T* data, const shape_t& shape) {
    tensor_view v;
    v.data = data;
    v.shape = shape;
    std::int64_t stride = 1;
    for (int i = shape.rank - 1; i >= 0; --i) {
      v.strides[i] = stride;
      stride *= shape.dims[i];
    }
    return v;
  }

  UNMASK_HOST_DEVICE int rank() const { return shape.rank; }
  UNMASK_HOST_DEVICE std::int64_t size(int i) const { return shape.dims[i]; }
  UNMASK_HOST_DEVICE std::int64_t numel() const { return shape.numel(); }

  UNMASK_HOST_DEVICE bool is_contiguous() const {
    std::int64_t stride = 1;
    for (int i = shape.rank - 1; i >= 0; --i) {
      if (shape.dims[i] != 1 && strides[i] != stride) return false;
      stride *= shape.dims[i];
    }
    return true;
  }

  UNMASK_HOST_DEVICE T& operator()(std::int64_t i) const { return data[i * strides[0]]; }
  UNMASK_HOST_DEVICE T& operator()(std::int64_t i, std::int64_t j) const {
    return data[i * strides[0] + j * strides[1]];
  }
  UNMASK_HOST_DEVICE T& operator()(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return data[i * strides[0] + j * strides[1] + k * strides[2]];
  }
  UNMASK_HOST_DEVICE T& operator()(std::int64_t i, std::int64_t j, std::int64_t k, std::int64_t l) const {
    return data[i * strides[0] + j * strides[1] + k * strides[2] + l * strides[3]];
  }

  // The sub-view at index i of the outermost dimension.
  UNMASK_HOST_DEVICE tensor_view slice(std::int64_t i) const {
    tensor_view v;
    v.data = data + i * strides[0];
    v.shape.rank = shape.rank - 1;
    for (int d = 1; d < shape.rank; ++d) {
      v.shape.dims[d - 1] = shape.dims[d];
      v.strides[d - 1] = strides[d];
    }
    return v;
  }
};

// A run-time typed, read-only view: what a checkpoint hands out.
struct tensor_ref {
  const void* data = nullptr;
  dtype type = dtype::f32;
  shape_t shape;
  std::string name;

  std::size_t bytes() const { return std::size_t(shape.numel()) * dtype_size(type); }

  // The typed view; throws when T does not match the stored dtype.
  template <class T>
  tensor_view<const T> as() const {
    if (dtype_of<T>::value != type)
      throw checkpoint_error(concat("tensor '", name, "' has dtype ", dtype_name(type), ", not ",
                                    dtype_name(dtype_of<T>::value)));
    return tensor_view<const T>::contiguous(static_cast<const T*>(data), shape);
  }
};

}  // namespace unmask
