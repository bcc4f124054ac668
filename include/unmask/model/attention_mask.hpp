// unmask/model/attention_mask.hpp
//
// Which keys a query may attend to. Masked diffusion LMs attend
// bidirectionally (`full`); their autoregressive twins are `causal`; block
// diffusion models (BD3-LM, Fast-dLLM v2) are `block_causal`: a token sees its
// own block and every earlier block. Blocks are counted from an origin (a
// sequence's prompt length when decoding, 0 by default): block(p) =
// floor((p - origin) / block_size), so the whole prompt is block -1, seen by
// every block and seeing itself; key j is visible from query i iff
// block(j) <= block(i). Positions are absolute, so the same predicate serves a
// query range decoded against a longer cached key range.
// Key padding (sequences shorter than the batch's canvas) is applied on top by
// the attention kernels from the per-sequence lengths.
#pragma once

#include <cstdint>
#include <string>

#include "unmask/core/config.hpp"
#include "unmask/core/error.hpp"

namespace unmask {

enum class attention_kind : std::uint8_t { full, causal, block_causal };

struct attention_mask {
  attention_kind kind = attention_kind::full;
  std::int32_t block_size = 0;  // only for block_causal

  static attention_mask full() { return {attention_kind::full, 0}; }
  static attention_mask causal() { return {attention_kind::causal, 0}; }
  static attention_mask block_causal(std::int32_t block_size) {
    if (block_size <= 0) throw argument_error(concat("block-causal attention needs block_size > 0, got ", block_size));
    return {attention_kind::block_causal, block_size};
  }

  // The block of position p for block-causal attention (-1: before the origin).
  UNMASK_HOST_DEVICE std::int64_t block_of(std::int64_t p, std::int64_t origin) const {
    return p < origin ? -1 : (p - origin) / block_size;
  }

  // True when the query at absolute position q may see the key at position k.
  UNMASK_HOST_DEVICE bool allows(std::int64_t q, std::int64_t k, std::int64_t origin = 0) const {
    switch (kind) {
      case attention_kind::causal: return k <= q;
      case attention_kind::block_causal: return block_of(k, origin) <= block_of(q, origin);
      default: return true;
    }
  }

  // One past the last key position visible from query q (keys are a prefix
  // for every kind, which lets kernels loop over [0, key_end) only).
  UNMASK_HOST_DEVICE std::int64_t key_end(std::int64_t q, std::int64_t key_count, std::int64_t origin = 0) const {
    std::int64_t end = key_count;
    if (kind == attention_kind::causal) end = q + 1;
    if (kind == attention_kind::block_causal) end = origin + (block_of(q, origin) + 1) * block_size;
    return end < key_count ? end : key_count;
  }
};

// The geometry of one attention call, shared by every backend's kernel: the
// shapes of the buffers, then per-sequence extents.
struct attention_shape {
  std::int64_t batch = 1;
  std::int64_t q_len = 0;        // query rows per sequence
  std::int64_t kv_capacity = 0;  // key rows per sequence in the K/V buffers
  std::int64_t heads = 1;
  std::int64_t kv_heads = 1;
  std::int64_t head_dim = 0;
};

// Per-sequence extents (batch); a null pointer means the default.
struct attention_extents {
  const std::int32_t* q_offsets = nullptr;   // absolute position of query row 0; default 0
  const std::int32_t* q_lengths = nullptr;   // valid query rows; default q_len
  const std::int32_t* kv_lengths = nullptr;  // valid keys; default kv_capacity
  const std::int32_t* kv_slots = nullptr;    // which K/V sequence slot a query sequence reads; default b
  const std::int32_t* mask_origins = nullptr;  // block-causal origin (prompt length); default 0
};

inline const char* to_string(attention_kind k) {
  switch (k) {
    case attention_kind::causal: return "causal";
    case attention_kind::block_causal: return "block_causal";
    default: return "full";
  }
}

}  // namespace unmask
