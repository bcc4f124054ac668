// unmask/model/llada_weights.hpp
//
// Binds the tensors of a checkpoint to the roles of the LLaDA architecture,
// under the tensor names of GSAI-ML/LLaDA-8B (model.transformer.wte,
// blocks.{i}.q_proj, ..., ln_f, ff_out), checking each tensor's shape against
// the configuration and that its dtype is one unmask computes with. Weights
// stay in their file dtype and in place (views into the mapped files): a bf16
// 8B checkpoint costs 16 GB, not 32. With weight tying the head is the
// embedding matrix.
#pragma once

#include <string>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/core/tensor_view.hpp"
#include "unmask/io/checkpoint.hpp"
#include "unmask/model/llada_config.hpp"

namespace unmask {

struct llada_layer_weights {
  tensor_ref attn_norm;  // (d_model)
  tensor_ref q_proj;     // (n_heads * head_dim, d_model)
  tensor_ref k_proj;     // (n_kv_heads * head_dim, d_model)
  tensor_ref v_proj;     // (n_kv_heads * head_dim, d_model)
  tensor_ref attn_out;   // (d_model, n_heads * head_dim)
  tensor_ref ff_norm;    // (d_model)
  tensor_ref ff_proj;    // (mlp_hidden, d_model)  SwiGLU gate
  tensor_ref up_proj;    // (mlp_hidden, d_model)
  tensor_ref ff_out;     // (d_model, mlp_hidden)  down projection
};

struct llada_weights {
  tensor_ref wte;   // (embedding_size, d_model)
  tensor_ref ln_f;  // (d_model)
  tensor_ref head;  // (embedding_size, d_model); wte when weights are tied
  std::vector<llada_layer_weights> layers;

  std::size_t bytes() const {
    std::size_t total = wte.bytes() + ln_f.bytes() + (head.data == wte.data ? 0 : head.bytes());
    for (const auto& l : layers)
      total += l.attn_norm.bytes() + l.q_proj.bytes() + l.k_proj.bytes() + l.v_proj.bytes() + l.attn_out.bytes() +
               l.ff_norm.bytes() + l.ff_proj.bytes() + l.up_proj.bytes() + l.ff_out.bytes();
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

inline llada_weights bind_llada_weights(const checkpoint& ckpt, const llada_config& c) {
  const std::int64_t d = c.d_model, hd = c.head_dim();
  const std::int64_t q_rows = c.n_heads * hd, kv_rows = c.n_kv_heads * hd, hidden = c.mlp_hidden_size;
  const std::string prefix = "model.transformer.";
  llada_weights w;
  w.wte = bind_tensor(ckpt, prefix + "wte.weight", {c.embedding_size, d}, "embedding_size, d_model");
  w.ln_f = bind_tensor(ckpt, prefix + "ln_f.weight", {d}, "d_model");
  w.head = c.weight_tying ? w.wte
                          : bind_tensor(ckpt, prefix + "ff_out.weight", {c.embedding_size, d}, "embedding_size, d_model");
  w.layers.reserve(std::size_t(c.n_layers));
  for (std::int64_t i = 0; i < c.n_layers; ++i) {
    const std::string b = prefix + "blocks." + std::to_string(i) + ".";
    llada_layer_weights l;
    l.attn_norm = bind_tensor(ckpt, b + "attn_norm.weight", {d}, "d_model");
    l.q_proj = bind_tensor(ckpt, b + "q_proj.weight", {q_rows, d}, "n_heads, d_model");
    l.k_proj = bind_tensor(ckpt, b + "k_proj.weight", {kv_rows, d}, "n_kv_heads, d_model");
    l.v_proj = bind_tensor(ckpt, b + "v_proj.weight", {kv_rows, d}, "n_kv_heads, d_model");
    l.attn_out = bind_tensor(ckpt, b + "attn_out.weight", {d, q_rows}, "d_model, n_heads");
    l.ff_norm = bind_tensor(ckpt, b + "ff_norm.weight", {d}, "d_model");
    l.ff_proj = bind_tensor(ckpt, b + "ff_proj.weight", {hidden, d}, "mlp_hidden_size, d_model");
    l.up_proj = bind_tensor(ckpt, b + "up_proj.weight", {hidden, d}, "mlp_hidden_size, d_model");
    l.ff_out = bind_tensor(ckpt, b + "ff_out.weight", {d, hidden}, "d_model, mlp_hidden_size");
    w.layers.push_back(std::move(l));
  }
  return w;
}

}  // namespace unmask
