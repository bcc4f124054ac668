// unmask/cpu/packed_matrix.hpp
//
// A weight matrix W (n, k) (PyTorch Linear layout) rearranged once into the
// panel layout of the CPU GEMM micro-kernels, so no call ever repacks it.
// W^T is cut into panels of P = 2L output columns (L = floats per SIMD
// register of the level the matrix is packed for, isa_lanes()); a panel is
// stored k-major, one panel row of P values per k, so the micro-kernel reads
// it front to back. Several matrices that multiply the same input (Q, K and
// V; gate and up) can be packed into one, each a segment of whole panels.
// Elements keep their file dtype, 16-bit weights stay 16-bit and are widened
// in registers:
//   f32   panel row = columns 0..P-1 in order
//   f16   panel row = columns 0..P-1 in order (F16C widens L at a time)
//   bf16  panel row = column j at entry 2j, column L+j at entry 2j+1 (j < L):
//         read as L 32-bit words, `w << 16` is columns [0, L) and
//         `w & 0xffff0000` columns [L, 2L), two integer ops for 2L floats
// In the bf16 compute mode (`pairs`) the weights are rounded to bf16 and k
// is taken two at a time, as vdpbf16ps consumes it: row pair t holds, for
// columns [0, L) then [L, 2L), the words (W[c][2t], W[c][2t+1]) with the
// even k in the low half; an odd k is padded with a zero. Columns past a
// segment's width are zero, so a partial panel computes zeros that are never
// stored.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "unmask/core/dtype.hpp"
#include "unmask/core/error.hpp"
#include "unmask/core/tensor_view.hpp"
#include "unmask/cpu/isa.hpp"
#include "unmask/cpu/parallel.hpp"

namespace unmask::cpu {

// How the GEMMs multiply: fp32 fused multiply-adds on fp32 activations (the
// default, matching the reference to rounding), or bf16 pairs with fp32
// accumulation (activations rounded to bf16 at the GEMM input; vdpbf16ps on
// CPUs with AVX512-BF16, the same arithmetic emulated elsewhere).
enum class compute_mode { f32, bf16 };

inline const char* compute_mode_name(compute_mode m) { return m == compute_mode::bf16 ? "bf16" : "f32"; }

struct packed_layout {
  int lanes = 8;       // L; a panel is 2L columns
  bool pairs = false;  // the bf16 compute mode's k-pair layout
  bool operator==(const packed_layout& o) const { return lanes == o.lanes && pairs == o.pairs; }
};

inline packed_layout layout_for(isa_level level, compute_mode mode) {
  return {isa_lanes(level), mode == compute_mode::bf16};
}

// Memory that is written before it is read: no zeroing pass over gigabytes.
struct aligned_bytes {
  struct release {
    void operator()(unsigned char* p) const { std::free(p); }
  };
  std::unique_ptr<unsigned char, release> data;
  std::size_t size = 0;

  void allocate(std::size_t bytes) {
    const std::size_t rounded = (bytes + 63) / 64 * 64;
    void* p = rounded ? std::aligned_alloc(64, rounded) : nullptr;
    if (rounded && !p)
      throw argument_error(concat("packed weights: cannot allocate ", bytes, " bytes"));
    data.reset(static_cast<unsigned char*>(p));
    size = bytes;
  }
};

class packed_matrix {
 public:
  struct segment {
    std::string name;
    std::int64_t columns = 0;      // outputs of this segment
    std::int64_t first_panel = 0;  // its first panel in the matrix
    std::int64_t panels = 0;
  };

  packed_matrix() = default;

  // Packs the first columns[i] rows of each parts[i] (all (rows_i, k) with
  // rows_i >= columns[i]) as consecutive segments.
  packed_matrix(const std::vector<const tensor_ref*>& parts, const std::vector<std::int64_t>& columns,
                packed_layout layout)
      : layout_(layout) {
    if (parts.empty() || parts.size() != columns.size())
      throw argument_error("packed_matrix: one output width per part is needed");
    if (layout.lanes != 8 && layout.lanes != 16)
      throw argument_error(concat("packed_matrix: ", layout.lanes, " lanes is not a packed layout"));
    const std::int64_t width = panel_width();
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const tensor_ref& t = *parts[i];
      if (t.shape.rank != 2 || !is_compute_dtype(t.type) || columns[i] < 1 || columns[i] > t.shape[0])
        throw argument_error(concat("packed_matrix: weight '", t.name, "' of shape ", to_string(t.shape),
                                    " and dtype ", dtype_name(t.type), " cannot give ", columns[i], " outputs"));
      if (i == 0) {
        k_ = t.shape[1];
        type_ = layout.pairs ? dtype::bf16 : t.type;
      } else if (t.shape[1] != k_ || (!layout.pairs && t.type != type_)) {
        throw argument_error(concat("packed_matrix: weight '", t.name, "' (", to_string(t.shape), ", ",
                                    dtype_name(t.type), ") does not match the shape or dtype of '",
                                    parts[0]->name, "'"));
      }
      segment s;
      s.name = t.name;
      s.columns = columns[i];
      s.first_panel = panels_;
      s.panels = (columns[i] + width - 1) / width;
      panels_ += s.panels;
      segments_.push_back(s);
    }
    k_stored_ = layout.pairs ? (k_ + 1) / 2 * 2 : k_;
    panel_bytes_ = std::size_t(k_stored_ * width) * dtype_size(type_);
    storage_.allocate(panel_bytes_ * std::size_t(panels_));
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const segment& s = segments_[i];
      const tensor_ref& t = *parts[i];
      parallel_for(0, s.panels, [&](std::int64_t p) { pack_panel(t, s, p); }, 2 * width * k_);
    }
  }

  const packed_layout& layout() const { return layout_; }
  dtype type() const { return type_; }
  std::int64_t k() const { return k_; }
  std::int64_t k_stored() const { return k_stored_; }
  std::int64_t panels() const { return panels_; }
  std::int64_t panel_width() const { return 2 * std::int64_t(layout_.lanes); }
  const std::vector<segment>& segments() const { return segments_; }
  std::int64_t columns() const {
    std::int64_t n = 0;
    for (const segment& s : segments_) n += s.columns;
    return n;
  }
  std::size_t bytes() const { return storage_.size; }
  const void* panel(std::int64_t p) const { return storage_.data.get() + std::size_t(p) * panel_bytes_; }

 private:
  void pack_panel(const tensor_ref& t, const segment& s, std::int64_t p) {
    const std::int64_t width = panel_width(), lanes = layout_.lanes;
    const std::int64_t col0 = p * width, count = std::min(width, s.columns - col0);
    unsigned char* out = storage_.data.get() + std::size_t(s.first_panel + p) * panel_bytes_;
    // Source element (column c of this panel, depth i) as float or raw bits.
    auto source = [&](std::int64_t c, std::int64_t i) -> float {
      return c < count ? load_as_float(t.data, t.type, std::size_t((col0 + c) * k_ + i)) : 0.0f;
    };
    auto raw16 = [&](std::int64_t c, std::int64_t i) -> std::uint16_t {
      return c < count ? static_cast<const std::uint16_t*>(t.data)[(col0 + c) * k_ + i] : std::uint16_t(0);
    };
    if (layout_.pairs) {
      auto* o = reinterpret_cast<std::uint16_t*>(out);
      const bool exact = t.type == dtype::bf16;
      auto value = [&](std::int64_t c, std::int64_t i) -> std::uint16_t {
        if (i >= k_) return 0;
        return exact ? raw16(c, i) : to_bfloat16(source(c, i)).bits;
      };
      for (std::int64_t pair = 0; pair < k_stored_ / 2; ++pair)
        for (std::int64_t c = 0; c < width; ++c) {
          const std::int64_t word = pair * width + c;  // columns [0, L) then [L, 2L), one word each
          o[2 * word] = value(c, 2 * pair);
          o[2 * word + 1] = value(c, 2 * pair + 1);
        }
      return;
    }
    switch (type_) {
      case dtype::f32: {
        auto* o = reinterpret_cast<float*>(out);
        for (std::int64_t i = 0; i < k_; ++i)
          for (std::int64_t c = 0; c < width; ++c) o[i * width + c] = source(c, i);
        break;
      }
      case dtype::f16: {
        auto* o = reinterpret_cast<std::uint16_t*>(out);
        for (std::int64_t i = 0; i < k_; ++i)
          for (std::int64_t c = 0; c < width; ++c) o[i * width + c] = raw16(c, i);
        break;
      }
      default: {  // bf16, interleaved
        auto* o = reinterpret_cast<std::uint16_t*>(out);
        for (std::int64_t i = 0; i < k_; ++i)
          for (std::int64_t j = 0; j < lanes; ++j) {
            o[i * width + 2 * j] = raw16(j, i);
            o[i * width + 2 * j + 1] = raw16(lanes + j, i);
          }
      }
    }
  }

  packed_layout layout_;
  dtype type_ = dtype::f32;
  std::int64_t k_ = 0, k_stored_ = 0, panels_ = 0;
  std::size_t panel_bytes_ = 0;
  std::vector<segment> segments_;
  aligned_bytes storage_;
};

}  // namespace unmask::cpu
