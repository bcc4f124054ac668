// unmask/cpu/attention.hpp
//
// Scaled dot-product attention, softmax(q k^T / sqrt(head_dim)) v, in fp32 for
// every (sequence, head, query). Queries occupy absolute positions
// [q_offset, q_offset + q_len) and keys [0, kv_len), so the same kernel serves
// a whole canvas (q_offset 0, q_len == kv_len) and a query block decoded
// against cached keys. Grouped-query attention maps query head h to K/V head
// h / (heads / kv_heads). The mask (full, causal, block-causal) decides which
// keys a query sees; keys at or past a sequence's length are padding and never
// seen, and query rows past it produce zeros. Softmax subtracts the row
// maximum before exponentiating.
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

struct attention_shape {
  std::int64_t batch = 1;
  std::int64_t q_len = 0;     // query rows per sequence
  std::int64_t kv_len = 0;    // key rows per sequence
  std::int64_t q_offset = 0;  // absolute position of query row 0
  std::int64_t heads = 1;
  std::int64_t kv_heads = 1;
  std::int64_t head_dim = 0;
};

namespace cpu {

// q (batch, q_len, heads, head_dim); k, v (batch, kv_len, kv_heads, head_dim);
// out (batch, q_len, heads, head_dim); lengths (batch) valid keys per
// sequence, or null when all kv_len are valid.
inline void attention(const float* q, const float* k, const float* v, float* out, const attention_shape& s,
                      const std::int32_t* lengths, attention_mask mask) {
  if (s.heads % s.kv_heads != 0)
    throw argument_error(concat("attention: heads ", s.heads, " is not a multiple of kv_heads ", s.kv_heads));
  const std::int64_t group = s.heads / s.kv_heads, hd = s.head_dim;
  const float scale = 1.0f / std::sqrt(float(hd));
  parallel_for(0, s.batch * s.heads * s.q_len, [&](std::int64_t index) {
    thread_local std::vector<float> scores;
    const std::int64_t i = index % s.q_len, h = (index / s.q_len) % s.heads, b = index / (s.q_len * s.heads);
    const std::int64_t length = lengths ? lengths[b] : s.kv_len;
    const std::int64_t position = s.q_offset + i;
    float* o = out + ((b * s.q_len + i) * s.heads + h) * hd;
    if (position >= length) {
      std::fill(o, o + hd, 0.0f);
      return;
    }
    const std::int64_t key_end = mask.key_end(position, length);
    const float* qv = q + ((b * s.q_len + i) * s.heads + h) * hd;
    const std::int64_t kvh = h / group;
    if (scores.size() < std::size_t(key_end)) scores.resize(std::size_t(s.kv_len));
    float maximum = -std::numeric_limits<float>::infinity();
    for (std::int64_t j = 0; j < key_end; ++j) {
      const float* kv = k + ((b * s.kv_len + j) * s.kv_heads + kvh) * hd;
      float dot = 0;
      for (std::int64_t d = 0; d < hd; ++d) dot += qv[d] * kv[d];
      scores[std::size_t(j)] = dot * scale;
      maximum = std::max(maximum, scores[std::size_t(j)]);
    }
    float total = 0;
    for (std::int64_t j = 0; j < key_end; ++j) total += scores[std::size_t(j)] = std::exp(scores[std::size_t(j)] - maximum);
    std::fill(o, o + hd, 0.0f);
    for (std::int64_t j = 0; j < key_end; ++j) {
      const float p = scores[std::size_t(j)] / total;
      const float* vv = v + ((b * s.kv_len + j) * s.kv_heads + kvh) * hd;
      for (std::int64_t d = 0; d < hd; ++d) o[d] += p * vv[d];
    }
  });
}

}  // namespace cpu
}  // namespace unmask
