// unmask/model/transformer_weights.hpp
//
// Binds the tensors of a checkpoint to the roles of the dense transformer
// (unmask/model/weight_roles.hpp) under the names of the configuration's
// layout, checking each tensor's shape against the configuration and that
// its dtype is one unmask computes with. Weights stay in their file dtype and
// in place (views into the mapped files): a bf16 8B checkpoint costs 16 GB,
// not 32. With a tied head the head is the embedding matrix. Every tensor of
// the checkpoint must be bound: one left over (a layer the configuration does
// not count, a head beside a tied embedding) is an error naming it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/core/tensor_view.hpp"
#include "unmask/io/checkpoint.hpp"
#include "unmask/model/model_config.hpp"
#include "unmask/model/weight_roles.hpp"

namespace unmask {

struct transformer_layer_weights {
  tensor_ref attn_norm;                // (d_model)
  tensor_ref q_proj;                   // (n_heads * head_dim, d_model)
  tensor_ref k_proj;                   // (n_kv_heads * head_dim, d_model)
  tensor_ref v_proj;                   // (n_kv_heads * head_dim, d_model)
  tensor_ref q_bias, k_bias, v_bias;   // (n_heads * head_dim), (n_kv_heads * head_dim) x2; empty without qkv_bias
  tensor_ref q_norm, k_norm;           // (head_dim); empty without qk_norm
  tensor_ref o_proj;                   // (d_model, n_heads * head_dim)
  tensor_ref mlp_norm;                 // (d_model)
  tensor_ref gate_proj;                // (mlp_hidden, d_model)  SwiGLU gate
  tensor_ref up_proj;                  // (mlp_hidden, d_model)
  tensor_ref down_proj;                // (d_model, mlp_hidden)

  // Every tensor the layer holds, absent ones (null data) included.
  std::vector<const tensor_ref*> all() const {
    return {&attn_norm, &q_proj, &k_proj, &v_proj, &q_bias, &k_bias, &v_bias, &q_norm, &k_norm,
            &o_proj, &mlp_norm, &gate_proj, &up_proj, &down_proj};
  }
};

struct transformer_weights {
  tensor_ref embedding;   // (embedding_size, d_model)
  tensor_ref final_norm;  // (d_model)
  tensor_ref head;        // (embedding_size, d_model); the embedding when tied
  std::vector<transformer_layer_weights> layers;

  tensor_ref& slot(weight_role role, std::int64_t layer) {
    switch (role) {
      case weight_role::embedding: return embedding;
      case weight_role::final_norm: return final_norm;
      case weight_role::head: return head;
      default: break;
    }
    transformer_layer_weights& l = layers.at(std::size_t(layer));
    switch (role) {
      case weight_role::attn_norm: return l.attn_norm;
      case weight_role::q_proj: return l.q_proj;
      case weight_role::k_proj: return l.k_proj;
      case weight_role::v_proj: return l.v_proj;
      case weight_role::q_bias: return l.q_bias;
      case weight_role::k_bias: return l.k_bias;
      case weight_role::v_bias: return l.v_bias;
      case weight_role::q_norm: return l.q_norm;
      case weight_role::k_norm: return l.k_norm;
      case weight_role::o_proj: return l.o_proj;
      case weight_role::mlp_norm: return l.mlp_norm;
      case weight_role::gate_proj: return l.gate_proj;
      case weight_role::up_proj: return l.up_proj;
      default: return l.down_proj;
    }
  }

  std::size_t bytes() const {
    std::size_t total = embedding.bytes() + final_norm.bytes() + (head.data == embedding.data ? 0 : head.bytes());
    for (const auto& l : layers)
      for (const tensor_ref* t : l.all()) total += t->data ? t->bytes() : 0;
    return total;
  }
};

inline tensor_ref bind_tensor(const checkpoint& ckpt, const std::string& name, const shape_t& expected,
                              const char* why) {
  const tensor_ref& t = ckpt.tensor(name);
  if (t.shape != expected)
    throw checkpoint_error(concat("tensor '", name, "' has shape ", to_string(t.shape), ", but config.json (", why,
                                  ") needs ", to_string(expected)));
  if (!is_compute_dtype(t.type))
    throw checkpoint_error(concat("tensor '", name, "' has dtype ", dtype_name(t.type),
                                  "; unmask computes with F32, F16 or BF16 weights"));
  return t;
}

inline transformer_weights bind_weights(const checkpoint& ckpt, const transformer_config& c) {
  // Every layer needs several tensors, so a layer count beyond the number of
  // tensors cannot be bound; it is refused before anything is sized by it.
  if (const std::size_t held = ckpt.names().size(); std::uint64_t(c.n_layers) > held) {
    std::int64_t present = 0;
    while (ckpt.find(tensor_name(c, weight_role::attn_norm, present))) ++present;
    throw checkpoint_error(concat("config.json counts ", c.n_layers, " layers, but checkpoint '", ckpt.source(),
                                  "' holds ", held, " tensors and has no tensor '",
                                  tensor_name(c, weight_role::attn_norm, present), "'"));
  }
  transformer_weights w;
  w.layers.resize(std::size_t(c.n_layers));
  const std::vector<weight_spec> specs = weight_specs(c);
  for (const weight_spec& s : specs) w.slot(s.role, s.layer) = bind_tensor(ckpt, tensor_name(c, s.role, s.layer), s.shape, s.why);
  if (c.tied_head) w.head = w.embedding;
  if (ckpt.names().size() > specs.size()) {
    std::vector<std::string> expected;
    expected.reserve(specs.size());
    for (const weight_spec& s : specs) expected.push_back(tensor_name(c, s.role, s.layer));
    std::sort(expected.begin(), expected.end());
    for (const std::string& name : ckpt.names())
      if (!std::binary_search(expected.begin(), expected.end(), name))
        throw checkpoint_error(concat("tensor '", name, "' is not used by the ", c.family, " configuration (",
                                      c.n_layers, " layers", c.tied_head ? ", tied head" : "",
                                      c.qkv_bias ? "" : ", no q/k/v bias", c.qk_norm ? "" : ", no q/k norm",
                                      "); config.json and the checkpoint disagree"));
  }
  return w;
}

}  // namespace unmask
