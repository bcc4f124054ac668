// tests/cuda/attention_cases.hpp
//
// The attention cases both CUDA attention kernels are checked on (masks,
// grouped-query heads, cached key ranges, slots, padding rows, odd sizes,
// rows that see no key, misaligned buffers), their inputs with the CPU
// reference's output, the comparison, and a runner that puts a case on the
// device and brings the output back.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/buffers.hpp"
#include "cuda/device.hpp"
#include "unmask/cpu/attention.hpp"
#include "unmask/model/attention_mask.hpp"

namespace unmask::test {

struct attention_case {
  std::string name;
  attention_shape s;
  attention_mask mask = attention_mask::full();
  std::vector<std::int32_t> q_offsets, q_lengths, kv_lengths, kv_slots, mask_origins;  // empty: null
  std::int64_t slots = 0;    // K/V sequences in the buffers; 0: batch
  bool misaligned = false;   // buffers one element past a 16-byte boundary
  bool zero_rows = false;    // the case must contain rows that produce zeros
};

inline attention_shape shape(std::int64_t batch, std::int64_t q_len, std::int64_t kv_capacity, std::int64_t heads,
                      std::int64_t kv_heads, std::int64_t head_dim) {
  attention_shape s;
  s.batch = batch;
  s.q_len = q_len;
  s.kv_capacity = kv_capacity;
  s.heads = heads;
  s.kv_heads = kv_heads;
  s.head_dim = head_dim;
  return s;
}

inline std::vector<attention_case> attention_cases() {
  std::vector<attention_case> cases;
  auto add = [&](std::string name, attention_shape s, attention_mask mask) -> attention_case& {
    attention_case c;
    c.name = std::move(name);
    c.s = s;
    c.mask = mask;
    cases.push_back(c);
    return cases.back();
  };
  add("full", shape(2, 16, 16, 4, 4, 64), attention_mask::full());
  add("causal", shape(2, 33, 33, 2, 2, 64), attention_mask::causal());
  add("block_causal_3", shape(3, 29, 29, 2, 2, 32), attention_mask::block_causal(3)).mask_origins = {5, 0, 11};
  add("block_causal_16", shape(2, 64, 64, 2, 2, 128), attention_mask::block_causal(16)).mask_origins = {7, 20};
  add("gqa_8_on_2", shape(2, 20, 20, 8, 2, 64), attention_mask::causal());
  add("gqa_8_on_1", shape(2, 19, 19, 8, 1, 40), attention_mask::full());
  {
    // 7 queries at offsets 20 and 29 against 40 and 36 cached keys.
    attention_case& added = add("cache_full", shape(2, 7, 40, 4, 2, 64), attention_mask::full());
    added.q_offsets = {20, 29};
    added.kv_lengths = {40, 36};
    const attention_case c = added;  // a copy: push_back below may move `added`
    attention_case causal = c;
    causal.name = "cache_causal";
    causal.mask = attention_mask::causal();
    cases.push_back(causal);
    attention_case block = c;
    block.name = "cache_block_causal_8";
    block.mask = attention_mask::block_causal(8);
    block.mask_origins = {16, 4};
    cases.push_back(block);
  }
  {
    attention_case& c = add("kv_slots_permuted", shape(3, 12, 12, 2, 2, 64), attention_mask::causal());
    c.slots = 4;
    c.kv_slots = {2, 0, 3};
  }
  {
    attention_case& c = add("q_lengths_padding", shape(3, 12, 12, 4, 2, 64), attention_mask::full());
    c.q_lengths = {10, 3, 0};
    c.kv_lengths = {12, 5, 9};
    c.zero_rows = true;
  }
  {
    attention_case& c = add("odd_37x101_hd40", shape(2, 37, 101, 4, 2, 40), attention_mask::block_causal(16));
    c.q_offsets = {64, 50};
    c.kv_lengths = {101, 87};
    c.mask_origins = {30, 0};
  }
  add("odd_37x101_hd64", shape(1, 37, 101, 2, 1, 64), attention_mask::causal()).q_offsets = {64};
  add("odd_37x101_hd128", shape(1, 37, 101, 4, 4, 128), attention_mask::full()).kv_lengths = {99};
  add("many_keys_hd128", shape(1, 33, 300, 2, 2, 128), attention_mask::full());
  add("head_dim_256", shape(1, 20, 50, 2, 2, 256), attention_mask::causal()).q_offsets = {30};
  add("head_dim_200", shape(1, 10, 70, 2, 2, 200), attention_mask::full());
  add("head_dim_33", shape(1, 10, 45, 2, 2, 33), attention_mask::full());
  add("head_dim_24", shape(1, 17, 17, 2, 2, 24), attention_mask::causal());
  add("head_dim_2", shape(2, 9, 9, 3, 1, 2), attention_mask::full());
  {
    // Sequence 0: rows 0-2 sit before position 0 (causal: no key); sequence
    // 1 has no keys at all; sequence 2 has 3 padding rows.
    attention_case& c = add("rows_without_keys", shape(3, 8, 8, 2, 2, 64), attention_mask::causal());
    c.q_offsets = {-3, 0, 0};
    c.kv_lengths = {8, 0, 8};
    c.q_lengths = {8, 8, 5};
    c.zero_rows = true;
  }
  // Shapes the tensor-core kernel splits differently: over 64 queries (its
  // 4-warp blocks, several 64-key tiles), few queries against more than 256
  // keys (key splits), and the head dims it takes.
  add("prefill_causal_200_hd128", shape(1, 200, 200, 2, 1, 128), attention_mask::causal());
  add("prefill_full_130_hd32", shape(2, 130, 130, 2, 2, 32), attention_mask::full());
  add("prefill_65_hd96", shape(1, 65, 90, 2, 2, 96), attention_mask::block_causal(32)).mask_origins = {9};
  add("decode_1x700_hd128", shape(2, 1, 700, 4, 2, 128), attention_mask::causal()).q_offsets = {699, 400};
  {
    attention_case& c = add("block_32x600_hd64", shape(2, 32, 600, 4, 4, 64), attention_mask::block_causal(32));
    c.q_offsets = {544, 288};
    c.kv_lengths = {576, 320};
    c.mask_origins = {32, 0};
  }
  {
    attention_case& c = add("decode_gqa_hd96", shape(3, 4, 520, 8, 2, 96), attention_mask::full());
    c.q_offsets = {516, 100, 0};
    c.kv_lengths = {520, 104, 0};
    c.q_lengths = {4, 4, 2};
    c.zero_rows = true;
  }
  add("misaligned_hd64", shape(2, 16, 16, 2, 2, 64), attention_mask::causal()).misaligned = true;
  add("misaligned_hd40", shape(1, 21, 30, 4, 2, 40), attention_mask::full()).misaligned = true;
  return cases;
}

inline const std::int32_t* or_null(const std::vector<std::int32_t>& v) { return v.empty() ? nullptr : v.data(); }

inline attention_extents host_extents(const attention_case& c) {
  attention_extents e;
  e.q_offsets = or_null(c.q_offsets);
  e.q_lengths = or_null(c.q_lengths);
  e.kv_lengths = or_null(c.kv_lengths);
  e.kv_slots = or_null(c.kv_slots);
  e.mask_origins = or_null(c.mask_origins);
  return e;
}

inline std::int64_t slots_of(const attention_case& c) { return c.slots > 0 ? c.slots : c.s.batch; }
inline std::size_t q_elements(const attention_case& c) {
  return std::size_t(c.s.batch * c.s.q_len * c.s.heads * c.s.head_dim);
}
inline std::size_t kv_elements(const attention_case& c) {
  return std::size_t(slots_of(c) * c.s.kv_capacity * c.s.kv_heads * c.s.head_dim);
}

// Whether (sequence b, query row i) must be all zeros, from the mask directly.
inline bool zero_row(const attention_case& c, std::int64_t b, std::int64_t i) {
  const std::int64_t q_length = c.q_lengths.empty() ? c.s.q_len : c.q_lengths[std::size_t(b)];
  if (i >= q_length) return true;
  const std::int64_t kv_length = c.kv_lengths.empty() ? c.s.kv_capacity : c.kv_lengths[std::size_t(b)];
  const std::int64_t position = (c.q_offsets.empty() ? 0 : c.q_offsets[std::size_t(b)]) + i;
  const std::int64_t origin = c.mask_origins.empty() ? 0 : c.mask_origins[std::size_t(b)];
  return c.mask.key_end(position, kv_length, origin) <= 0;
}

struct case_inputs {
  std::vector<float> q, k, v, want;
};

// Random q, k, v of type T and the CPU's attention on them widened to float.
template <class T>
case_inputs make_inputs(const attention_case& c, std::uint32_t seed, std::vector<T>& q, std::vector<T>& k,
                        std::vector<T>& v) {
  q = test::random_elements<T>(q_elements(c), seed, 1.0f);
  k = test::random_elements<T>(kv_elements(c), seed + 1, 1.0f);
  v = test::random_elements<T>(kv_elements(c), seed + 2, 1.0f);
  case_inputs in{test::widen(q), test::widen(k), test::widen(v), std::vector<float>(q_elements(c))};
  cpu::attention(in.q.data(), in.k.data(), in.v.data(), in.want.data(), c.s, host_extents(c), c.mask);
  return in;
}

// The fp32-unit kernel's tolerance: 1e-5 of the largest |output| plus one
// rounding unit of the output type (`unit`, 0 for float).
inline double reference_tolerance(const std::vector<float>& want, double unit) {
  double largest = 0;
  for (float w : want) largest = std::max(largest, double(std::fabs(w)));
  return (1e-5 + unit) * largest + 1e-7;
}

inline double tolerance_at(double tolerance, std::size_t) { return tolerance; }
inline double tolerance_at(const std::vector<double>& tolerance, std::size_t at) { return tolerance[at]; }

// Compares got (widened) with want within `tolerance` (one for all
// elements, or one per element); expected-zero rows must be exactly zero.
template <class Tolerance>
void expect_close(const attention_case& c, const std::vector<float>& got, const std::vector<float>& want,
                  const Tolerance& tolerance) {
  const std::int64_t hd = c.s.head_dim;
  int failures = 0, zeros = 0;
  for (std::int64_t b = 0; b < c.s.batch; ++b) {
    for (std::int64_t i = 0; i < c.s.q_len; ++i) {
      const bool zero = zero_row(c, b, i);
      zeros += zero;
      for (std::int64_t h = 0; h < c.s.heads; ++h) {
        for (std::int64_t d = 0; d < hd && failures < 10; ++d) {
          const std::size_t at = std::size_t(((b * c.s.q_len + i) * c.s.heads + h) * hd + d);
          const double allowed = tolerance_at(tolerance, at);
          const bool ok = zero ? got[at] == 0.0f : std::fabs(double(got[at]) - double(want[at])) <= allowed;
          if (!ok) {
            ++failures;
            ADD_FAILURE() << "sequence " << b << " row " << i << " head " << h << " dim " << d << ": " << got[at]
                          << " vs " << want[at] << (zero ? " (must be zero)" : "") << ", tolerance " << allowed;
          }
        }
      }
    }
  }
  if (c.zero_rows) EXPECT_GT(zeros, 0) << "the case was meant to have rows that produce zeros";
}

template <class T>
std::vector<T> with_offset(const std::vector<T>& v, bool misaligned) {
  std::vector<T> out;
  if (misaligned) out.push_back(cuda::from_float<T>(0.0f));
  out.insert(out.end(), v.begin(), v.end());
  return out;
}

// Runs launch(q, k, v, out, extents) -> cudaError_t on device copies of the
// case's inputs (one element off 16-byte alignment when c.misaligned), out
// poisoned with NaN first, and sets got to out widened to float (left empty
// on a failure, which is reported).
template <class T, class Launch>
void run_on_device(const attention_case& c, const std::vector<T>& q, const std::vector<T>& k,
                   const std::vector<T>& v, Launch&& launch, std::vector<float>& got) {
  got.clear();
  const std::size_t pad = c.misaligned ? 1 : 0;
  device_array<T> d_q, d_k, d_v, d_out;
  UNMASK_CUDA_OK(d_q.upload(with_offset(q, c.misaligned)));
  UNMASK_CUDA_OK(d_k.upload(with_offset(k, c.misaligned)));
  UNMASK_CUDA_OK(d_v.upload(with_offset(v, c.misaligned)));
  UNMASK_CUDA_OK(d_out.allocate(q_elements(c) + pad));
  UNMASK_CUDA_OK(d_out.poison());
  device_array<std::int32_t> d_offsets, d_q_lengths, d_kv_lengths, d_slots, d_origins;
  auto device_or_null = [](device_array<std::int32_t>& d, const std::vector<std::int32_t>& h) -> const std::int32_t* {
    if (h.empty()) return nullptr;
    EXPECT_EQ(d.upload(h), cudaSuccess);
    return d.data;
  };
  attention_extents e;
  e.q_offsets = device_or_null(d_offsets, c.q_offsets);
  e.q_lengths = device_or_null(d_q_lengths, c.q_lengths);
  e.kv_lengths = device_or_null(d_kv_lengths, c.kv_lengths);
  e.kv_slots = device_or_null(d_slots, c.kv_slots);
  e.mask_origins = device_or_null(d_origins, c.mask_origins);
  UNMASK_CUDA_OK(launch(d_q.data + pad, d_k.data + pad, d_v.data + pad, d_out.data + pad, e));
  UNMASK_CUDA_OK(cudaDeviceSynchronize());
  std::vector<T> raw;
  UNMASK_CUDA_OK(d_out.download(raw));
  got.resize(q_elements(c));
  for (std::size_t i = 0; i < got.size(); ++i) got[i] = to_float(raw[i + pad]);
}

}  // namespace unmask::test
