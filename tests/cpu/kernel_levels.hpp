// The CPU kernels at every level this machine can run, plus the portable copy
// instantiated with 16-lane vectors: that runs the AVX-512 kernels' layout
// and index logic (16-lane panels, 12-row strips, masked edges) on any CPU,
// so it is tested even where AVX-512 is missing.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "unmask/cpu/attention.hpp"
#include "unmask/cpu/matmul.hpp"

namespace unmask::test {

struct kernel_level {
  std::string name;
  int lanes;
  bool fused;  // multiply-adds fused (avx2 and up): fp32 results equal across such levels
  std::function<void(const float*, std::int64_t, std::int64_t, const cpu::packed_matrix&, float* const*,
                     const std::int64_t*, bool)>
      gemm;
  std::function<void(const float*, const float*, const float*, float*, const attention_shape&,
                     const attention_extents&, attention_mask)>
      attention;
};

inline std::vector<kernel_level> kernel_levels() {
  std::vector<kernel_level> levels;
  for (cpu::isa_level l : {cpu::isa_level::portable, cpu::isa_level::avx2, cpu::isa_level::avx512,
                           cpu::isa_level::avx512_bf16}) {
    if (l > cpu::detected_isa()) continue;
    levels.push_back({cpu::isa_name(l), cpu::isa_lanes(l), l != cpu::isa_level::portable,
                      [l](const float* x, std::int64_t rows, std::int64_t ldx, const cpu::packed_matrix& w,
                          float* const* y, const std::int64_t* ldy, bool acc) { cpu::gemm(l, x, rows, ldx, w, y, ldy, acc); },
                      [l](const float* q, const float* k, const float* v, float* o, const attention_shape& s,
                          const attention_extents& e, attention_mask m) { cpu::attention(q, k, v, o, s, e, m, l); }});
  }
  using emulated = cpu::isa_portable::generic_ops<16>;
  levels.push_back({"portable16", 16, false,
                    [](const float* x, std::int64_t rows, std::int64_t ldx, const cpu::packed_matrix& w, float* const* y,
                       const std::int64_t* ldy, bool acc) {
                      cpu::isa_portable::gemm_packed<emulated>(x, rows, ldx, w, y, ldy, acc);
                    },
                    [](const float* q, const float* k, const float* v, float* o, const attention_shape& s,
                       const attention_extents& e, attention_mask m) {
                      cpu::isa_portable::attention_fused<emulated>(q, k, v, o, s, e, m);
                    }});
  return levels;
}

// The levels this CPU runs (avx512_bf16 only adds a GEMM mode, so it is left
// out here), for kernels that take a level.
inline std::vector<cpu::isa_level> cpu_levels() {
  std::vector<cpu::isa_level> out;
  for (cpu::isa_level l : {cpu::isa_level::portable, cpu::isa_level::avx2, cpu::isa_level::avx512})
    if (l <= cpu::detected_isa()) out.push_back(l);
  return out;
}

inline cpu::packed_layout layout_of(const kernel_level& level, cpu::compute_mode mode) {
  return {level.lanes, mode == cpu::compute_mode::bf16};
}

}  // namespace unmask::test
