// unmask/model/weight_roles.hpp
//
// The tensors a dense masked transformer (unmask/model/transformer_config.hpp)
// is made of, by role, and the shape each must have for a configuration. A
// layout adapter names each role on disk; the binder and the random-model
// builder walk the same list, so what is written is what is read.
#pragma once

#include <cstdint>
#include <vector>

#include "unmask/core/tensor_view.hpp"
#include "unmask/model/transformer_config.hpp"

namespace unmask {

enum class weight_role {
  embedding,   // (embedding_size, d_model)
  final_norm,  // (d_model)
  head,        // (embedding_size, d_model); absent when tied to the embedding
  attn_norm,   // (d_model)
  q_proj,      // (n_heads * head_dim, d_model)
  k_proj,      // (n_kv_heads * head_dim, d_model)
  v_proj,      // (n_kv_heads * head_dim, d_model)
  q_bias,      // (n_heads * head_dim); with qkv_bias
  k_bias,      // (n_kv_heads * head_dim); with qkv_bias
  v_bias,      // (n_kv_heads * head_dim); with qkv_bias
  q_norm,      // (head_dim); with qk_norm
  k_norm,      // (head_dim); with qk_norm
  o_proj,      // (d_model, n_heads * head_dim)
  mlp_norm,    // (d_model)
  gate_proj,   // (mlp_hidden_size, d_model)  SwiGLU gate
  up_proj,     // (mlp_hidden_size, d_model)
  down_proj,   // (d_model, mlp_hidden_size)
};

struct weight_spec {
  weight_role role;
  std::int64_t layer;  // -1 for the tensors outside the blocks
  shape_t shape;
  const char* why;     // the config dimensions the shape comes from
  bool is_norm() const {
    return role == weight_role::final_norm || role == weight_role::attn_norm || role == weight_role::mlp_norm ||
           role == weight_role::q_norm || role == weight_role::k_norm;
  }
};

// Every tensor the configuration needs, in file order (embedding, blocks, final norm, head).
inline std::vector<weight_spec> weight_specs(const transformer_config& c) {
  const std::int64_t d = c.d_model, q = c.q_width(), kv = c.kv_width(), hidden = c.mlp_hidden_size;
  std::vector<weight_spec> s;
  s.push_back({weight_role::embedding, -1, {c.embedding_size, d}, "embedding_size, d_model"});
  for (std::int64_t i = 0; i < c.n_layers; ++i) {
    s.push_back({weight_role::attn_norm, i, {d}, "d_model"});
    s.push_back({weight_role::q_proj, i, {q, d}, "n_heads * head_dim, d_model"});
    s.push_back({weight_role::k_proj, i, {kv, d}, "n_kv_heads * head_dim, d_model"});
    s.push_back({weight_role::v_proj, i, {kv, d}, "n_kv_heads * head_dim, d_model"});
    if (c.qkv_bias) {
      s.push_back({weight_role::q_bias, i, {q}, "n_heads * head_dim"});
      s.push_back({weight_role::k_bias, i, {kv}, "n_kv_heads * head_dim"});
      s.push_back({weight_role::v_bias, i, {kv}, "n_kv_heads * head_dim"});
    }
    if (c.qk_norm) {
      s.push_back({weight_role::q_norm, i, {c.head_dim}, "head_dim"});
      s.push_back({weight_role::k_norm, i, {c.head_dim}, "head_dim"});
    }
    s.push_back({weight_role::o_proj, i, {d, q}, "d_model, n_heads * head_dim"});
    s.push_back({weight_role::mlp_norm, i, {d}, "d_model"});
    s.push_back({weight_role::gate_proj, i, {hidden, d}, "mlp_hidden_size, d_model"});
    s.push_back({weight_role::up_proj, i, {hidden, d}, "mlp_hidden_size, d_model"});
    s.push_back({weight_role::down_proj, i, {d, hidden}, "d_model, mlp_hidden_size"});
  }
  s.push_back({weight_role::final_norm, -1, {d}, "d_model"});
  if (!c.tied_head) s.push_back({weight_role::head, -1, {c.embedding_size, d}, "embedding_size, d_model"});
  return s;
}

}  // namespace unmask
