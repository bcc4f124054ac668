// unmask/model/llada_layout.hpp
//
// The LLaDA layout: config.json with the key names of GSAI-ML/LLaDA-8B (an
// OLMo-derived config: d_model, n_heads, n_kv_heads, ...; the fields of
// ModelConfig in the published configuration_llada.py) and the tensor names
// model.transformer.wte, blocks.{i}.q_proj, ..., ln_f, ff_out. Every key is
// either read, required to hold the one value unmask implements (biases,
// ALiBi, QK layer norm, logit scaling, non-RMS norms and non-SiLU activations
// are rejected by name), or known to be inert (dropout, initialisation,
// training precision); an unknown key is an error. LLaDA has no bias, no QK
// norm and no logit shift; attention is bidirectional. The tiny models in
// models/ add one key, `unmask_objective` ("masked_diffusion" or
// "autoregressive"), that marks the autoregressive twin (causal attention).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "unmask/core/error.hpp"
#include "unmask/model/config_keys.hpp"
#include "unmask/model/transformer_config.hpp"
#include "unmask/model/weight_roles.hpp"

namespace unmask {

inline bool is_llada_config(const nlohmann::json& j) {
  return config_keys::lists_architecture(j, "LLaDAModelLM") || config_keys::string_or(j, "model_type", "") == "llada";
}

inline transformer_config read_llada_config(const nlohmann::json& j, const std::string& source) {
  namespace k = config_keys;
  if (!k::lists_architecture(j, "LLaDAModelLM") && k::find(j, "architectures"))
    throw config_error(concat(source, ": unknown architecture ", k::find(j, "architectures")->dump(),
                              " (the LLaDA layout is LLaDAModelLM)"));
  if (k::find(j, "model_type") && k::string_or(j, "model_type", "") != "llada")
    throw config_error(concat(source, ": unknown model_type ", k::find(j, "model_type")->dump(),
                              " (the LLaDA layout is \"llada\")"));
  k::only_known(j,
                {"architectures", "model_type", "d_model", "n_heads", "n_kv_heads", "n_layers", "mlp_hidden_size",
                 "vocab_size", "embedding_size", "rope_theta", "rms_norm_eps", "max_sequence_length",
                 "mask_token_id", "eos_token_id", "pad_token_id", "weight_tying", "include_bias", "block_type",
                 "activation_type", "layer_norm_type", "rope", "alibi", "attention_layer_norm", "scale_logits",
                 "include_qkv_bias", "input_emb_norm", "layer_norm_with_affine", "rope_full_precision",
                 "multi_query_attention", "clip_qkv", "unmask_objective"},
                {"alibi_bias_max", "attention_dropout", "residual_dropout", "embedding_dropout",
                 "attention_layer_norm_with_affine", "bias_for_layer_norm", "block_group_size", "flash_attention",
                 "init_cutoff_factor", "init_device", "init_fn", "init_std", "mlp_ratio", "precision",
                 "train_max_sequence_length", "use_cache", "auto_map", "torch_dtype", "transformers_version"},
                "LLaDA", source);

  k::require(j, "block_type", std::string("llama"), source);
  k::require(j, "activation_type", std::string("silu"), source);
  k::require(j, "layer_norm_type", std::string("rms"), source);
  k::require(j, "rope", true, source);
  k::require(j, "rope_full_precision", true, source);
  k::require(j, "alibi", false, source);
  k::require(j, "attention_layer_norm", false, source);
  k::require(j, "scale_logits", false, source);
  k::require(j, "include_qkv_bias", false, source);
  k::require(j, "input_emb_norm", false, source);
  k::require(j, "layer_norm_with_affine", true, source);
  if (k::find(j, "clip_qkv"))
    throw config_error(concat(source, ": 'clip_qkv' = ", k::find(j, "clip_qkv")->dump(), " is not supported (unmask implements null)"));

  transformer_config c;
  c.family = "LLaDA";
  c.layout = tensor_layout::llada;
  c.d_model = k::integer(j, "d_model", source);
  c.n_heads = k::integer(j, "n_heads", source);
  // OLMo-style configs may leave n_kv_heads null, meaning one K/V head per query head.
  if (!j.contains("n_kv_heads")) throw config_error(concat(source, ": missing key 'n_kv_heads'"));
  c.n_kv_heads = k::find(j, "n_kv_heads") ? k::integer(j, "n_kv_heads", source) : c.n_heads;
  if (k::boolean_or(j, "multi_query_attention", false, source) && c.n_kv_heads != 1)
    throw config_error(concat(source, ": 'multi_query_attention' = true needs n_kv_heads 1, got ", c.n_kv_heads));
  c.n_layers = k::integer(j, "n_layers", source);
  c.mlp_hidden_size = k::integer(j, "mlp_hidden_size", source);
  c.vocab_size = k::integer(j, "vocab_size", source);
  c.embedding_size = k::integer_or(j, "embedding_size", c.vocab_size, source);
  c.rope_theta = k::number(j, "rope_theta", source);
  c.rms_norm_eps = k::number(j, "rms_norm_eps", source);
  c.max_sequence_length = k::integer(j, "max_sequence_length", source);
  c.mask_token_id = k::integer(j, "mask_token_id", source);
  c.eos_token_id = k::integer(j, "eos_token_id", source);
  c.stop_token_ids = {c.eos_token_id};
  c.pad_token_id = k::integer_or(j, "pad_token_id", -1, source);
  c.tied_head = k::boolean(j, "weight_tying", source);
  if (k::boolean(j, "include_bias", source))
    throw config_error(concat(source, ": 'include_bias' = true is not supported (LLaDA has no linear biases)"));
  if (c.n_heads <= 0) throw config_error(concat(source, ": 'n_heads' must be positive, got ", c.n_heads));
  if (c.d_model % c.n_heads != 0)
    throw config_error(concat(source, ": d_model ", c.d_model, " is not a multiple of n_heads ", c.n_heads));
  c.head_dim = c.d_model / c.n_heads;

  const std::string objective = k::string_or(j, "unmask_objective", "masked_diffusion");
  if (objective == "autoregressive") {
    c.objective = training_objective::autoregressive;
    c.attention = trained_attention::causal;
  } else if (objective != "masked_diffusion") {
    throw config_error(concat(source, ": 'unmask_objective' must be \"masked_diffusion\" or \"autoregressive\", got ",
                              k::find(j, "unmask_objective")->dump()));
  }
  c.validate(source);
  return c;
}

// The tensor name of a role in GSAI-ML/LLaDA-8B's checkpoint.
inline std::string llada_tensor_name(weight_role role, std::int64_t layer) {
  const std::string p = "model.transformer.";
  const std::string b = p + "blocks." + std::to_string(layer) + ".";
  switch (role) {
    case weight_role::embedding: return p + "wte.weight";
    case weight_role::final_norm: return p + "ln_f.weight";
    case weight_role::head: return p + "ff_out.weight";
    case weight_role::attn_norm: return b + "attn_norm.weight";
    case weight_role::q_proj: return b + "q_proj.weight";
    case weight_role::k_proj: return b + "k_proj.weight";
    case weight_role::v_proj: return b + "v_proj.weight";
    case weight_role::o_proj: return b + "attn_out.weight";
    case weight_role::mlp_norm: return b + "ff_norm.weight";
    case weight_role::gate_proj: return b + "ff_proj.weight";
    case weight_role::up_proj: return b + "up_proj.weight";
    case weight_role::down_proj: return b + "ff_out.weight";
    default: break;
  }
  throw argument_error("the LLaDA layout has no biases or q/k norms");
}

}  // namespace unmask
