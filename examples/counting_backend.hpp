// counting_backend.hpp: a backend with one kernel replaced.
//
// Deriving from cpu_backend and hiding a member is how one experiments with
// a kernel: the forward pass and every decoder call the derived type's
// member, the rest stays the CPU backend's. Here the two GEMM entry points
// (matmul_nt and the fused matmul_nt_group, which the Q/K/V and gate/up
// projections use) count the multiply-adds they run, 2 * rows * n * k FLOPs
// each, then call the CPU backend's. Copies of a backend share the counter
// (the decoder keeps its own copy), so the caller reads the total through
// the object it made.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "unmask/cpu/backend.hpp"

namespace example {

struct counting_backend : unmask::cpu_backend {
  std::shared_ptr<std::atomic<std::int64_t>> flops = std::make_shared<std::atomic<std::int64_t>>(0);
  std::shared_ptr<std::atomic<std::int64_t>> calls = std::make_shared<std::atomic<std::int64_t>>(0);

  template <class Y>
  void matmul_nt(const float* x, std::int64_t rows, const unmask::tensor_ref& w, std::int64_t n, Y* y,
                 bool accumulate) const {
    count(rows, n, w.shape.dims[1]);
    cpu_backend::matmul_nt(x, rows, w, n, y, accumulate);
  }
  void matmul_nt_group(const float* x, std::int64_t rows, const unmask::tensor_ref* const* w, const std::int64_t* n,
                       float* const* y, int group) const {
    for (int i = 0; i < group; ++i) count(rows, n[i], w[i]->shape.dims[1]);
    cpu_backend::matmul_nt_group(x, rows, w, n, y, group);
  }

 private:
  void count(std::int64_t rows, std::int64_t n, std::int64_t k) const {
    *flops += 2 * rows * n * k;
    ++*calls;
  }
};

}  // namespace example
