// unmask/cpu/packed_weights.hpp
//
// A model's projection weights in the CPU GEMM's panel layout
// (unmask/cpu/packed_matrix.hpp), built once per model and layout and shared
// by every forward object through transformer_model::prepared. Per layer, the
// projections that read the same input are one matrix of segments:
//   qkv      q_proj | k_proj | v_proj   (one GEMM for the attention inputs)
//   gate_up  gate_proj | up_proj        (one GEMM for SwiGLU's inputs)
// plus o_proj, down_proj and the LM head (its first vocab_size rows). Each
// source tensor's file pages are released once it is packed, so a mapped
// checkpoint costs about its file size once, not twice (the embedding table
// and the norms stay where they are; the embedding is gathered row by row).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/cpu/packed_matrix.hpp"
#include "unmask/model/transformer_model.hpp"

namespace unmask::cpu {

struct packed_layer {
  packed_matrix qkv, o_proj, gate_up, down_proj;
};

class packed_weights {
 public:
  packed_weights(const transformer_model& model, packed_layout layout) : layout_(layout) {
    const transformer_config& c = model.config();
    const transformer_weights& w = model.weights();
    const std::int64_t hd = c.head_dim, q_rows = c.n_heads * hd, kv_rows = c.n_kv_heads * hd;
    const std::int64_t d = c.d_model, hidden = c.mlp_hidden_size;
    auto done = [&](std::initializer_list<const tensor_ref*> sources) {
      for (const tensor_ref* t : sources)
        if (t->data != w.embedding.data) model.tensors().release_pages(*t);  // the embedding is still gathered
    };
    layers_.resize(w.layers.size());
    for (std::size_t i = 0; i < w.layers.size(); ++i) {
      const transformer_layer_weights& l = w.layers[i];
      packed_layer& p = layers_[i];
      p.qkv = packed_matrix({&l.q_proj, &l.k_proj, &l.v_proj}, {q_rows, kv_rows, kv_rows}, layout);
      done({&l.q_proj, &l.k_proj, &l.v_proj});
      p.o_proj = packed_matrix({&l.o_proj}, {d}, layout);
      done({&l.o_proj});
      p.gate_up = packed_matrix({&l.gate_proj, &l.up_proj}, {hidden, hidden}, layout);
      done({&l.gate_proj, &l.up_proj});
      p.down_proj = packed_matrix({&l.down_proj}, {d}, layout);
      done({&l.down_proj});
      index(l.q_proj, p.qkv);
      index(l.o_proj, p.o_proj);
      index(l.gate_proj, p.gate_up);
      index(l.down_proj, p.down_proj);
    }
    head_ = packed_matrix({&w.head}, {c.vocab_size}, layout);
    done({&w.head});
    index(w.head, head_);
  }

  const packed_layout& layout() const { return layout_; }
  const std::vector<packed_layer>& layers() const { return layers_; }
  const packed_matrix& head() const { return head_; }

  // The packed matrix whose first segment is `first` (null when none is).
  const packed_matrix* find(const tensor_ref& first) const {
    auto it = by_source_.find(first.data);
    return it == by_source_.end() ? nullptr : it->second;
  }

  std::size_t bytes() const {
    std::size_t total = head_.bytes();
    for (const packed_layer& p : layers_) total += p.qkv.bytes() + p.o_proj.bytes() + p.gate_up.bytes() + p.down_proj.bytes();
    return total;
  }

  // The key a model stores a layout's packing under (transformer_model::prepared).
  static std::string key(packed_layout layout) {
    return concat("cpu.packed.", layout.lanes, layout.pairs ? ".bf16pairs" : ".f32");
  }

 private:
  void index(const tensor_ref& first, const packed_matrix& m) { by_source_[first.data] = &m; }

  packed_layout layout_;
  std::vector<packed_layer> layers_;
  packed_matrix head_;
  std::unordered_map<const void*, const packed_matrix*> by_source_;
};

}  // namespace unmask::cpu
