// unmask/model/qwen_layout.hpp
//
// The Qwen layout: config.json with transformers' Qwen2Config / Qwen3Config
// keys (hidden_size, num_attention_heads, ...) and the tensor names
// model.embed_tokens, model.layers.{i}.self_attn.{q,k,v,o}_proj,
// mlp.{gate,up,down}_proj, input_layernorm, post_attention_layernorm,
// model.norm and lm_head. It carries these families, told apart by
// `architectures` (or `model_type`):
//   DreamModel ("Dream"; Dream-v0, Dream-Coder, DiffuCoder): Qwen2 with q/k/v
//     bias, bidirectional attention, shifted logits (Dream's generation_utils.py:
//     logits = cat([logits[:, :1], logits[:, :-1]])).
//   Fast_dLLM_QwenForCausalLM ("Fast_dLLM_Qwen"; NVlabs Fast-dLLM v2): Qwen2
//     with q/k/v bias, block-causal attention over `bd_size` blocks (32 when
//     absent), shifted logits; mask id 151665 when config.json names none.
//   SDARForCausalLM ("sdar"; JetAstra SDAR): Qwen3 with per-head q/k RMSNorm
//     (self_attn.q_norm, k_norm), no bias, block-causal over `block_size`
//     blocks (4 when absent), no shift.
//   Qwen2ForCausalLM ("qwen2"), Qwen3ForCausalLM ("qwen3"): the autoregressive
//     models these start from (causal attention), as decoding peers.
// RoPE scaling, sliding-window attention and Qwen3's attention_bias (which
// also biases o_proj) are not used by any of these checkpoints and are
// rejected by name; so is any key the layout does not know.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "unmask/core/error.hpp"
#include "unmask/model/config_keys.hpp"
#include "unmask/model/transformer_config.hpp"
#include "unmask/model/weight_roles.hpp"

namespace unmask {

namespace detail {

struct qwen_family {
  const char* architecture;
  const char* model_type;
  const char* name;
  bool qk_norm;  // Qwen3 blocks; otherwise Qwen2 blocks (q/k/v bias)
  training_objective objective;
  trained_attention attention;
  const char* block_key;        // config key of the block size, or null
  std::int64_t default_block;   // when the key is absent
  bool shifted_logits;
  std::int64_t default_mask_id; // when config.json names none; -1: required
};

inline const qwen_family* find_qwen_family(const nlohmann::json& j) {
  static const qwen_family families[] = {
      {"DreamModel", "Dream", "Dream", false, training_objective::masked_diffusion, trained_attention::bidirectional,
       nullptr, 0, true, -1},
      {"Fast_dLLM_QwenForCausalLM", "Fast_dLLM_Qwen", "Fast-dLLM v2", false, training_objective::masked_diffusion,
       trained_attention::block_causal, "bd_size", 32, true, 151665},
      {"SDARForCausalLM", "sdar", "SDAR", true, training_objective::masked_diffusion, trained_attention::block_causal,
       "block_size", 4, false, -1},
      {"Qwen2ForCausalLM", "qwen2", "Qwen2", false, training_objective::autoregressive, trained_attention::causal,
       nullptr, 0, false, -1},
      {"Qwen3ForCausalLM", "qwen3", "Qwen3", true, training_objective::autoregressive, trained_attention::causal,
       nullptr, 0, false, -1},
  };
  for (const qwen_family& f : families)
    if (config_keys::lists_architecture(j, f.architecture)) return &f;
  if (!config_keys::find(j, "architectures"))
    for (const qwen_family& f : families)
      if (config_keys::string_or(j, "model_type", "") == f.model_type) return &f;
  return nullptr;
}

}  // namespace detail

inline bool is_qwen_config(const nlohmann::json& j) { return detail::find_qwen_family(j) != nullptr; }

inline transformer_config read_qwen_config(const nlohmann::json& j, const std::string& source) {
  namespace k = config_keys;
  const detail::qwen_family* f = detail::find_qwen_family(j);
  if (!f) throw config_error(concat(source, ": not a configuration of the Qwen layout"));
  const std::string type = k::string_or(j, "model_type", f->model_type);
  if (type != f->model_type)
    throw config_error(concat(source, ": model_type \"", type, "\" does not match architecture ", f->architecture,
                              " (expected \"", f->model_type, "\")"));
  k::only_known(j,
                {"architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
                 "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size", "rms_norm_eps",
                 "rope_theta", "rope_scaling", "max_position_embeddings", "tie_word_embeddings", "mask_token_id",
                 "eos_token_id", "bos_token_id", "pad_token_id", "hidden_act", "use_sliding_window",
                 "attention_bias", "bd_size", "block_size", "layer_types"},
                {"sliding_window", "max_window_layers", "attention_dropout", "initializer_range", "use_cache",
                 "torch_dtype", "dtype", "transformers_version", "auto_map", "attn_implementation", "debug", "ep_size",
                 "fuse_cross_entropy", "micro_forward", "skip_checkpoint", "use_deepep", "_name_or_path"},
                f->name, source);

  k::require(j, "hidden_act", std::string("silu"), source);
  k::require(j, "use_sliding_window", false, source);
  k::require(j, "attention_bias", false, source);  // Qwen3's flag also biases o_proj
  if (k::find(j, "rope_scaling"))
    throw config_error(concat(source, ": 'rope_scaling' = ", k::find(j, "rope_scaling")->dump(),
                              " is not supported (unmask implements unscaled RoPE)"));
  if (const nlohmann::json* types = k::find(j, "layer_types")) {
    if (!types->is_array()) throw config_error(concat(source, ": 'layer_types' must be a list"));
    for (const auto& t : *types)
      if (t != "full_attention")
        throw config_error(concat(source, ": 'layer_types' entry ", t.dump(),
                                  " is not supported (unmask implements \"full_attention\")"));
  }
  for (const char* key : {"bd_size", "block_size"})
    if (k::find(j, key) && (!f->block_key || std::string(key) != f->block_key))
      throw config_error(concat(source, ": key '", key, "' is not one the ", f->name, " family reads"));

  transformer_config c;
  c.family = f->name;
  c.layout = tensor_layout::qwen;
  c.objective = f->objective;
  c.attention = f->attention;
  c.shifted_logits = f->shifted_logits;
  c.qk_norm = f->qk_norm;
  c.qkv_bias = !f->qk_norm;  // Qwen2 attention always has q/k/v bias
  if (f->block_key) c.attention_block = k::integer_or(j, f->block_key, f->default_block, source);
  c.d_model = k::integer(j, "hidden_size", source);
  c.n_heads = k::integer(j, "num_attention_heads", source);
  c.n_kv_heads = k::integer_or(j, "num_key_value_heads", c.n_heads, source);
  c.n_layers = k::integer(j, "num_hidden_layers", source);
  c.mlp_hidden_size = k::integer(j, "intermediate_size", source);
  c.vocab_size = k::integer(j, "vocab_size", source);
  c.embedding_size = c.vocab_size;
  c.rope_theta = k::number(j, "rope_theta", source);
  c.rms_norm_eps = k::number(j, "rms_norm_eps", source);
  c.max_sequence_length = k::integer(j, "max_position_embeddings", source);
  c.tied_head = k::boolean_or(j, "tie_word_embeddings", false, source);
  if (c.n_heads <= 0) throw config_error(concat(source, ": 'num_attention_heads' must be positive, got ", c.n_heads));
  if (k::find(j, "head_dim")) {
    c.head_dim = k::integer(j, "head_dim", source);
  } else {
    if (c.d_model % c.n_heads != 0)
      throw config_error(concat(source, ": hidden_size ", c.d_model, " is not a multiple of num_attention_heads ", c.n_heads));
    c.head_dim = c.d_model / c.n_heads;
  }
  c.stop_token_ids = k::integers(j, "eos_token_id", source);
  c.eos_token_id = c.stop_token_ids.front();
  c.bos_token_id = k::integer_or(j, "bos_token_id", -1, source);
  c.pad_token_id = k::integer_or(j, "pad_token_id", -1, source);
  c.mask_token_id = k::integer_or(j, "mask_token_id", f->default_mask_id, source);
  if (c.objective == training_objective::masked_diffusion && c.mask_token_id < 0)
    throw config_error(concat(source, ": missing key 'mask_token_id'"));
  c.validate(source);
  return c;
}

// The tensor name of a role in a Qwen2 / Qwen3 checkpoint.
inline std::string qwen_tensor_name(weight_role role, std::int64_t layer) {
  const std::string b = "model.layers." + std::to_string(layer) + ".";
  switch (role) {
    case weight_role::embedding: return "model.embed_tokens.weight";
    case weight_role::final_norm: return "model.norm.weight";
    case weight_role::head: return "lm_head.weight";
    case weight_role::attn_norm: return b + "input_layernorm.weight";
    case weight_role::q_proj: return b + "self_attn.q_proj.weight";
    case weight_role::k_proj: return b + "self_attn.k_proj.weight";
    case weight_role::v_proj: return b + "self_attn.v_proj.weight";
    case weight_role::q_bias: return b + "self_attn.q_proj.bias";
    case weight_role::k_bias: return b + "self_attn.k_proj.bias";
    case weight_role::v_bias: return b + "self_attn.v_proj.bias";
    case weight_role::q_norm: return b + "self_attn.q_norm.weight";
    case weight_role::k_norm: return b + "self_attn.k_norm.weight";
    case weight_role::o_proj: return b + "self_attn.o_proj.weight";
    case weight_role::mlp_norm: return b + "post_attention_layernorm.weight";
    case weight_role::gate_proj: return b + "mlp.gate_proj.weight";
    case weight_role::up_proj: return b + "mlp.up_proj.weight";
    case weight_role::down_proj: return b + "mlp.down_proj.weight";
  }
  return {};
}

}  // namespace unmask
