// unmask/model/kv_cache.hpp
//
// Keys and values of every layer for a batch of sequences, stored after RoPE
// at their absolute positions: layer l holds K and V of shape
// (batch, capacity, kv_heads, head_dim) in the backend's memory and activation
// type. A forward pass
// given a cache writes the K/V of its rows at positions offset + i and attends
// over the cached range, which is how the autoregressive loop decodes one
// token per step and how diffusion decoding reuses a finished prefix.
#pragma once

#include <cstdint>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/model/model_config.hpp"

namespace unmask {

template <class Backend>
class kv_cache {
 public:
  using activation = typename Backend::activation;
  using buffer = typename Backend::template buffer<activation>;

  kv_cache(const transformer_config& c, std::int64_t batch, std::int64_t capacity)
      : batch_(batch), capacity_(capacity), kv_heads_(c.n_kv_heads), head_dim_(c.head_dim) {
    if (batch <= 0 || capacity <= 0)
      throw argument_error(concat("kv_cache: batch ", batch, " and capacity ", capacity, " must be positive"));
    if (capacity > c.max_sequence_length)
      throw argument_error(concat("kv_cache: capacity ", capacity, " exceeds max_sequence_length ", c.max_sequence_length));
    const std::size_t size = std::size_t(batch * capacity * kv_heads_ * head_dim_);
    keys_.resize(std::size_t(c.n_layers));
    values_.resize(std::size_t(c.n_layers));
    for (auto& k : keys_) k.resize(size);
    for (auto& v : values_) v.resize(size);
  }

  std::int64_t batch() const { return batch_; }
  std::int64_t capacity() const { return capacity_; }
  std::int64_t row_width() const { return kv_heads_ * head_dim_; }
  activation* keys(std::size_t layer) { return keys_[layer].data(); }
  activation* values(std::size_t layer) { return values_[layer].data(); }

 private:
  std::int64_t batch_, capacity_, kv_heads_, head_dim_;
  std::vector<buffer> keys_, values_;
};

}  // namespace unmask
