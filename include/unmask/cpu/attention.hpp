// unmask/cpu/attention.hpp
//
// Scaled dot-product attention, softmax(q k^T / sqrt(head_dim)) v, in fp32 for
// every (sequence, head, query). Query row i of sequence b sits at absolute
// position q_offsets[b] + i; keys are rows [0, kv_lengths[b]) of a K/V buffer
// with room for kv_capacity rows per sequence, key j at absolute position j.
// So one kernel serves a whole canvas (offsets 0, keys = the queries' own
// rows) and a query block decoded against a longer, cached key range. Grouped
// query attention maps query head h to K/V head h / (heads / kv_heads). The
// mask (full, causal, block-causal) decides which keys a query sees; query
// rows at or past q_lengths[b] are padding and produce zeros. Softmax
// subtracts the row maximum before exponentiating.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/cpu/parallel.hpp"
#include "unmask/model/attention_mask.hpp"

namespace unmask {

namespace cpu {

// q (batch, q_len, heads, head_dim); k, v (slots, kv_capacity, kv_heads,
// head_dim); out (batch, q_len, heads, head_dim).
inline void attention(const float* q, const float* k, const float* v, float* out, const attention_shape& s,
                      const attention_extents& e, attention_mask mask) {
  if (s.kv_heads <= 0 || s.heads % s.kv_heads != 0)
    throw argument_error(concat("attention: heads ", s.heads, " is not a multiple of kv_heads ", s.kv_heads));
  const std::int64_t group = s.heads / s.kv_heads, hd = s.head_dim;
  const float scale = 1.0f / std::sqrt(float(hd));
  parallel_for(0, s.batch * s.heads * s.q_len, [&](std::int64_t index) {
    thread_local std::vector<float> scores;
    const std::int64_t i = index % s.q_len, h = (index / s.q_len) % s.heads, b = index / (s.q_len * s.heads);
    const std::int64_t q_length = e.q_lengths ? e.q_lengths[b] : s.q_len;
    const std::int64_t kv_length = e.kv_lengths ? e.kv_lengths[b] : s.kv_capacity;
    const std::int64_t position = (e.q_offsets ? e.q_offsets[b] : 0) + i;
    float* o = out + ((b * s.q_len + i) * s.heads + h) * hd;
    std::fill(o, o + hd, 0.0f);
    if (i >= q_length) return;
    const std::int64_t key_end = mask.key_end(position, kv_length, e.mask_origins ? e.mask_origins[b] : 0);
    if (key_end <= 0) return;
    const float* qv = q + ((b * s.q_len + i) * s.heads + h) * hd;
    const std::int64_t kvh = h / group, slot = e.kv_slots ? e.kv_slots[b] : b;
    if (scores.size() < std::size_t(key_end)) scores.resize(std::size_t(key_end));
    float maximum = -std::numeric_limits<float>::infinity();
    for (std::int64_t j = 0; j < key_end; ++j) {
      const float* kv = k + ((slot * s.kv_capacity + j) * s.kv_heads + kvh) * hd;
      float dot = 0;
      for (std::int64_t d = 0; d < hd; ++d) dot += qv[d] * kv[d];
      scores[std::size_t(j)] = dot * scale;
      maximum = std::max(maximum, scores[std::size_t(j)]);
    }
    float total = 0;
    for (std::int64_t j = 0; j < key_end; ++j) total += scores[std::size_t(j)] = std::exp(scores[std::size_t(j)] - maximum);
    for (std::int64_t j = 0; j < key_end; ++j) {
      const float p = scores[std::size_t(j)] / total;
      const float* vv = v + ((slot * s.kv_capacity + j) * s.kv_heads + kvh) * hd;
      for (std::int64_t d = 0; d < hd; ++d) o[d] += p * vv[d];
    }
  }, 2 * s.kv_capacity * hd);
}

}  // namespace cpu
}  // namespace unmask
