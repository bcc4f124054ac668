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
// rows at or past q_lengths[b] are padding and produce zeros. The kernel
// (unmask/cpu/kernels/attention.inl) is fused and flash-style: online
// softmax over tiles of keys, SIMD dot products along head_dim, a vectorised
// exp, parallel over (sequence, K/V head, tile of queries); a query's result
// does not depend on the batch, the tiling or the cached key range.
#pragma once

#include <cstdint>

#include "unmask/core/error.hpp"
#include "unmask/cpu/isa.hpp"
#include "unmask/cpu/simd/kernels.hpp"
#include "unmask/model/attention_mask.hpp"

namespace unmask::cpu {

// q (batch, q_len, heads, head_dim); k, v (slots, kv_capacity, kv_heads,
// head_dim); out (batch, q_len, heads, head_dim).
inline void attention(const float* q, const float* k, const float* v, float* out, const attention_shape& s,
                      const attention_extents& e, attention_mask mask, isa_level level = default_isa()) {
  if (s.kv_heads <= 0 || s.heads % s.kv_heads != 0)
    throw argument_error(concat("attention: heads ", s.heads, " is not a multiple of kv_heads ", s.kv_heads));
  if (s.head_dim <= 0 || s.q_len <= 0 || s.kv_capacity <= 0 || s.batch <= 0)
    throw argument_error(concat("attention: batch ", s.batch, ", q_len ", s.q_len, ", kv_capacity ", s.kv_capacity,
                                " and head_dim ", s.head_dim, " must be positive"));
  UNMASK_ISA_DISPATCH(level, isa::attention_fused<isa::ops>(q, k, v, out, s, e, mask));
}

}  // namespace unmask::cpu
