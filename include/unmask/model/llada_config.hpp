// unmask/model/llada_config.hpp
//
// The hyper-parameters of a LLaDA-architecture model, read from the
// `config.json` of a Hugging Face model directory with the key names of
// GSAI-ML/LLaDA-8B (an OLMo-derived config: d_model, n_heads, n_kv_heads, ...).
// Every key the forward pass depends on is required and type-checked; keys
// that would change the computation to something unmask does not implement
// (biases, ALiBi, QK layer norm, logit scaling, non-RMS norms, non-SiLU
// activations) are rejected by name rather than ignored.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "unmask/core/error.hpp"
#include "unmask/io/json_file.hpp"

namespace unmask {

struct llada_config {
  std::int64_t d_model = 0;
  std::int64_t n_heads = 0;
  std::int64_t n_kv_heads = 0;
  std::int64_t n_layers = 0;
  std::int64_t mlp_hidden_size = 0;
  std::int64_t vocab_size = 0;      // ids a tokenizer produces; logits have this width
  std::int64_t embedding_size = 0;  // rows of wte and of the head (>= vocab_size, padded)
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-5;
  std::int64_t max_sequence_length = 0;
  std::int64_t mask_token_id = -1;
  std::int64_t eos_token_id = -1;
  bool weight_tying = false;

  std::int64_t head_dim() const { return d_model / n_heads; }
  std::int64_t group_size() const { return n_heads / n_kv_heads; }  // query heads per K/V head

  // Parses and validates; `source` names the file in error messages.
  static llada_config from_json(const nlohmann::json& j, const std::string& source);

  static llada_config load(const std::string& path) { return from_json(read_json_file(path), path); }

  // GSAI-ML/LLaDA-8B's shape (config.json of GSAI-ML/LLaDA-8B-Instruct on Hugging Face).
  static llada_config llada_8b() {
    llada_config c;
    c.d_model = 4096, c.n_heads = 32, c.n_kv_heads = 32, c.n_layers = 32, c.mlp_hidden_size = 12288;
    c.vocab_size = c.embedding_size = 126464;
    c.rope_theta = 500000.0, c.rms_norm_eps = 1e-5, c.max_sequence_length = 4096;
    c.mask_token_id = 126336, c.eos_token_id = 126081;
    return c;
  }

  // A ~1.3B-parameter shape with LLaDA's vocabulary (0.8B outside the embeddings).
  static llada_config llada_1b_shape() {
    llada_config c = llada_8b();
    c.d_model = 2048, c.n_heads = 16, c.n_kv_heads = 16, c.n_layers = 16, c.mlp_hidden_size = 5632;
    return c;
  }
};

namespace detail {

inline const nlohmann::json* config_key(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

inline std::int64_t config_int(const nlohmann::json& j, const char* key, const std::string& source) {
  const nlohmann::json* v = config_key(j, key);
  if (!v) throw config_error(concat(source, ": missing key '", key, "'"));
  if (!v->is_number_integer()) throw config_error(concat(source, ": key '", key, "' must be an integer, got ", v->type_name()));
  return v->get<std::int64_t>();
}

inline double config_number(const nlohmann::json& j, const char* key, const std::string& source) {
  const nlohmann::json* v = config_key(j, key);
  if (!v) throw config_error(concat(source, ": missing key '", key, "'"));
  if (!v->is_number()) throw config_error(concat(source, ": key '", key, "' must be a number, got ", v->type_name()));
  return v->get<double>();
}

inline bool config_bool(const nlohmann::json& j, const char* key, const std::string& source) {
  const nlohmann::json* v = config_key(j, key);
  if (!v) throw config_error(concat(source, ": missing key '", key, "'"));
  if (!v->is_boolean()) throw config_error(concat(source, ": key '", key, "' must be true or false, got ", v->type_name()));
  return v->get<bool>();
}

// An optional key that, when present, must hold `expected`.
template <class T>
void config_require(const nlohmann::json& j, const char* key, const T& expected, const std::string& source) {
  const nlohmann::json* v = config_key(j, key);
  if (!v) return;
  if (*v != nlohmann::json(expected))
    throw config_error(concat(source, ": '", key, "' = ", v->dump(), " is not supported (unmask implements ",
                              nlohmann::json(expected).dump(), ")"));
}

}  // namespace detail

inline llada_config llada_config::from_json(const nlohmann::json& j, const std::string& source) {
  using namespace detail;
  if (!j.is_object()) throw config_error(concat(source, ": the configuration is not a JSON object"));

  // Architecture: LLaDA's Hugging Face configs name it in both places.
  const nlohmann::json* arch = config_key(j, "architectures");
  const nlohmann::json* type = config_key(j, "model_type");
  if (!arch && !type) throw config_error(concat(source, ": names no architecture (no 'architectures' or 'model_type')"));
  if (arch) {
    bool found = false;
    if (arch->is_array())
      for (const auto& a : *arch) found = found || (a.is_string() && a.get<std::string>() == "LLaDAModelLM");
    if (!found) throw config_error(concat(source, ": unknown architecture ", arch->dump(), " (unmask reads LLaDAModelLM)"));
  }
  if (type && (!type->is_string() || type->get<std::string>() != "llada"))
    throw config_error(concat(source, ": unknown model_type ", type->dump(), " (unmask reads \"llada\")"));

  config_require(j, "block_type", std::string("llama"), source);
  config_require(j, "activation_type", std::string("silu"), source);
  config_require(j, "layer_norm_type", std::string("rms"), source);
  config_require(j, "rope", true, source);
  config_require(j, "alibi", false, source);
  config_require(j, "attention_layer_norm", false, source);
  config_require(j, "scale_logits", false, source);
  config_require(j, "include_qkv_bias", false, source);
  config_require(j, "input_emb_norm", false, source);
  config_require(j, "layer_norm_with_affine", true, source);

  llada_config c;
  c.d_model = config_int(j, "d_model", source);
  c.n_heads = config_int(j, "n_heads", source);
  // OLMo-style configs may leave n_kv_heads null, meaning one K/V head per query head.
  if (!j.contains("n_kv_heads")) throw config_error(concat(source, ": missing key 'n_kv_heads'"));
  c.n_kv_heads = config_key(j, "n_kv_heads") ? config_int(j, "n_kv_heads", source) : c.n_heads;
  c.n_layers = config_int(j, "n_layers", source);
  c.mlp_hidden_size = config_int(j, "mlp_hidden_size", source);
  c.vocab_size = config_int(j, "vocab_size", source);
  c.embedding_size = config_key(j, "embedding_size") ? config_int(j, "embedding_size", source) : c.vocab_size;
  c.rope_theta = config_number(j, "rope_theta", source);
  c.rms_norm_eps = config_number(j, "rms_norm_eps", source);
  c.max_sequence_length = config_int(j, "max_sequence_length", source);
  c.mask_token_id = config_int(j, "mask_token_id", source);
  c.eos_token_id = config_int(j, "eos_token_id", source);
  c.weight_tying = config_bool(j, "weight_tying", source);
  if (config_bool(j, "include_bias", source))
    throw config_error(concat(source, ": 'include_bias' = true is not supported (LLaDA has no linear biases)"));

  auto positive = [&](const char* key, std::int64_t v) {
    if (v <= 0) throw config_error(concat(source, ": '", key, "' must be positive, got ", v));
  };
  positive("d_model", c.d_model);
  positive("n_heads", c.n_heads);
  positive("n_kv_heads", c.n_kv_heads);
  positive("n_layers", c.n_layers);
  positive("mlp_hidden_size", c.mlp_hidden_size);
  positive("vocab_size", c.vocab_size);
  positive("max_sequence_length", c.max_sequence_length);
  if (c.d_model % c.n_heads != 0)
    throw config_error(concat(source, ": d_model ", c.d_model, " is not a multiple of n_heads ", c.n_heads));
  if (c.head_dim() % 2 != 0)
    throw config_error(concat(source, ": head dimension ", c.head_dim(), " must be even for rotary embeddings"));
  if (c.n_heads % c.n_kv_heads != 0)
    throw config_error(concat(source, ": n_heads ", c.n_heads, " is not a multiple of n_kv_heads ", c.n_kv_heads));
  if (c.embedding_size < c.vocab_size)
    throw config_error(concat(source, ": embedding_size ", c.embedding_size, " is smaller than vocab_size ", c.vocab_size));
  if (!(c.rope_theta > 0)) throw config_error(concat(source, ": 'rope_theta' must be positive"));
  if (!(c.rms_norm_eps > 0)) throw config_error(concat(source, ": 'rms_norm_eps' must be positive"));
  if (c.mask_token_id < 0 || c.mask_token_id >= c.vocab_size)
    throw config_error(concat(source, ": mask_token_id ", c.mask_token_id, " is outside the vocabulary of ", c.vocab_size));
  if (c.eos_token_id < 0 || c.eos_token_id >= c.vocab_size)
    throw config_error(concat(source, ": eos_token_id ", c.eos_token_id, " is outside the vocabulary of ", c.vocab_size));
  return c;
}

}  // namespace unmask
