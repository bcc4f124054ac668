// unmask/model/transformer_config.hpp
//
// One description of the dense masked transformers unmask runs: a stack of
// pre-norm blocks
//   h  = x + o_proj(Attention(rope(qk_norm(q_proj(n) + q_bias)), rope(qk_norm(k_proj(n) + k_bias)),
//                             v_proj(n) + v_bias)),                         n = attn_norm(x)
//   x' = h + down_proj(silu(gate_proj(m)) * up_proj(m)),                     m = mlp_norm(h)
// then logits = head(final_norm(x)). What differs between the families
// (LLaDA, Dream and the other Qwen2-based models, SDAR and the Qwen3 layout)
// is held as data: the QKV bias, the per-head q/k RMSNorm (over head_dim,
// before RoPE), a tied or untied head, GQA, the head dimension (Qwen3 sets it
// apart from d_model / n_heads), RoPE's theta, the attention the checkpoint
// was trained with (bidirectional, block-causal with its block size, or
// causal), the training objective, and the logit shift: in a shifted model
// (Dream, Fast-dLLM v2) the output at position i-1 predicts token i. The
// file layouts (config keys, tensor names) are read by the adapters in
// unmask/model/llada_layout.hpp and qwen_layout.hpp; this struct is what they
// produce and what the forward pass, the backends and the decoders read.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "unmask/core/error.hpp"

namespace unmask {

// How the checkpoint's tensors are named on disk (the adapter that binds them).
enum class tensor_layout { llada, qwen };

// The attention a checkpoint was trained with: what its decoders use by default.
enum class trained_attention { bidirectional, block_causal, causal };

// What a model was trained to do: fill masks in parallel, or predict the next token.
enum class training_objective { masked_diffusion, autoregressive };

inline const char* to_string(trained_attention a) {
  switch (a) {
    case trained_attention::bidirectional: return "bidirectional";
    case trained_attention::block_causal: return "block-causal";
    case trained_attention::causal: return "causal";
  }
  return "?";
}
inline const char* to_string(training_objective o) {
  return o == training_objective::masked_diffusion ? "masked diffusion" : "autoregressive";
}

struct transformer_config {
  std::string family = "LLaDA";  // what the adapter recognised ("LLaDA", "Dream", "Fast-dLLM v2", "SDAR", ...)
  tensor_layout layout = tensor_layout::llada;
  training_objective objective = training_objective::masked_diffusion;
  trained_attention attention = trained_attention::bidirectional;
  std::int64_t attention_block = 0;  // block size of block-causal training; 0 otherwise

  std::int64_t d_model = 0;
  std::int64_t n_heads = 0;
  std::int64_t n_kv_heads = 0;
  std::int64_t head_dim = 0;  // per head; d_model / n_heads unless the family sets it
  std::int64_t n_layers = 0;
  std::int64_t mlp_hidden_size = 0;
  std::int64_t vocab_size = 0;      // ids a tokenizer produces; logits have this width
  std::int64_t embedding_size = 0;  // rows of the embedding and the head (>= vocab_size, padded)
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-5;
  std::int64_t max_sequence_length = 0;

  std::int64_t mask_token_id = -1;
  std::int64_t eos_token_id = -1;            // the (first) end-of-sequence id
  std::vector<std::int64_t> stop_token_ids;  // every id that ends generation (eos_token_id ends it in any case)
  std::int64_t bos_token_id = -1;            // -1: none named
  std::int64_t pad_token_id = -1;

  bool tied_head = false;       // the head is the embedding matrix
  bool qkv_bias = false;        // q, k and v projections carry a bias
  bool qk_norm = false;         // per-head RMSNorm of q and k over head_dim, before RoPE
  bool shifted_logits = false;  // the output at position i-1 predicts token i

  std::int64_t q_width() const { return n_heads * head_dim; }
  std::int64_t kv_width() const { return n_kv_heads * head_dim; }
  std::int64_t group_size() const { return n_heads / n_kv_heads; }  // query heads per K/V head
  bool is_stop_token(std::int64_t id) const {
    if (id == eos_token_id) return true;
    for (std::int64_t s : stop_token_ids)
      if (s == id) return true;
    return false;
  }

  // Checks what every layout must satisfy; `source` names the file in messages.
  void validate(const std::string& source) const {
    auto positive = [&](const char* key, std::int64_t v) {
      if (v <= 0) throw config_error(concat(source, ": '", key, "' must be positive, got ", v));
    };
    positive("d_model", d_model);
    positive("n_heads", n_heads);
    positive("n_kv_heads", n_kv_heads);
    positive("head_dim", head_dim);
    positive("n_layers", n_layers);
    positive("mlp_hidden_size", mlp_hidden_size);
    positive("vocab_size", vocab_size);
    positive("max_sequence_length", max_sequence_length);
    // Sizes fit 32 bits (token ids are int32), so products of two never overflow.
    auto bounded = [&](const char* key, std::int64_t v) {
      if (v > std::int64_t(std::numeric_limits<std::int32_t>::max()))
        throw config_error(concat(source, ": '", key, "' = ", v, " is larger than unmask supports (2^31 - 1)"));
    };
    bounded("d_model", d_model);
    bounded("n_heads", n_heads);
    bounded("n_kv_heads", n_kv_heads);
    bounded("head_dim", head_dim);
    bounded("n_layers", n_layers);
    bounded("mlp_hidden_size", mlp_hidden_size);
    bounded("vocab_size", vocab_size);
    bounded("embedding_size", embedding_size);
    bounded("max_sequence_length", max_sequence_length);
    bounded("attention block size", attention_block);
    if (head_dim % 2 != 0)
      throw config_error(concat(source, ": head dimension ", head_dim, " must be even for rotary embeddings"));
    if (n_heads % n_kv_heads != 0)
      throw config_error(concat(source, ": n_heads ", n_heads, " is not a multiple of n_kv_heads ", n_kv_heads));
    if (embedding_size < vocab_size)
      throw config_error(concat(source, ": embedding_size ", embedding_size, " is smaller than vocab_size ", vocab_size));
    // Both are used in fp32: they must stay positive, finite and normal there
    // (rope_theta 1e-300 would become 0, rms_norm_eps 1e300 infinity).
    auto positive_in_float = [&](const char* key, double v) {
      const float f = float(v);
      if (!(v > 0) || !std::isfinite(f) || !std::isnormal(f))
        throw config_error(concat(source, ": '", key, "' = ", v, " must be positive and within fp32's normal range [",
                                  std::numeric_limits<float>::min(), ", ", std::numeric_limits<float>::max(), "]"));
    };
    positive_in_float("rope_theta", rope_theta);
    positive_in_float("rms_norm_eps", rms_norm_eps);
    if (attention == trained_attention::block_causal && attention_block <= 0)
      throw config_error(concat(source, ": a block-causal model needs a positive block size"));
    auto in_vocab = [&](const char* what, std::int64_t id) {
      if (id < 0 || id >= vocab_size)
        throw config_error(concat(source, ": ", what, " ", id, " is outside the vocabulary of ", vocab_size));
    };
    if (objective == training_objective::masked_diffusion) in_vocab("mask_token_id", mask_token_id);
    else if (mask_token_id >= vocab_size) in_vocab("mask_token_id", mask_token_id);
    in_vocab("eos_token_id", eos_token_id);
    for (std::int64_t id : stop_token_ids) in_vocab("stop token id", id);
    if (bos_token_id >= vocab_size) in_vocab("bos_token_id", bos_token_id);
    if (pad_token_id >= vocab_size) in_vocab("pad_token_id", pad_token_id);
    if (objective == training_objective::masked_diffusion && is_stop_token(mask_token_id))
      throw config_error(concat(source, ": mask_token_id ", mask_token_id, " is also an end-of-sequence id"));
  }

  // GSAI-ML/LLaDA-8B's shape (config.json of GSAI-ML/LLaDA-8B-Instruct on Hugging Face).
  static transformer_config llada_8b() {
    transformer_config c;
    c.d_model = 4096, c.n_heads = 32, c.n_kv_heads = 32, c.head_dim = 128, c.n_layers = 32, c.mlp_hidden_size = 12288;
    c.vocab_size = c.embedding_size = 126464;
    c.rope_theta = 500000.0, c.rms_norm_eps = 1e-5, c.max_sequence_length = 4096;
    c.mask_token_id = 126336, c.eos_token_id = 126081, c.stop_token_ids = {126081};
    c.bos_token_id = 126080, c.pad_token_id = 126081;
    return c;
  }

  // A ~1.3B-parameter shape with LLaDA's vocabulary (0.8B outside the embeddings).
  static transformer_config llada_1b_shape() {
    transformer_config c = llada_8b();
    c.d_model = 2048, c.n_heads = 16, c.n_kv_heads = 16, c.head_dim = 128, c.n_layers = 16, c.mlp_hidden_size = 5632;
    return c;
  }

  // Dream-org/Dream-v0-Instruct-7B's shape (Qwen2.5-7B: QKV bias, GQA 28/4, shifted logits).
  static transformer_config dream_7b() {
    transformer_config c;
    c.family = "Dream", c.layout = tensor_layout::qwen, c.shifted_logits = true, c.qkv_bias = true;
    c.d_model = 3584, c.n_heads = 28, c.n_kv_heads = 4, c.head_dim = 128, c.n_layers = 28, c.mlp_hidden_size = 18944;
    c.vocab_size = c.embedding_size = 152064;
    c.rope_theta = 1e6, c.rms_norm_eps = 1e-6, c.max_sequence_length = 131072;
    c.mask_token_id = 151666, c.eos_token_id = 151643, c.stop_token_ids = {151643};
    c.bos_token_id = 151665, c.pad_token_id = 151643;
    return c;
  }

  // JetLM/SDAR-4B-Chat's shape (Qwen3-4B: QK norm, head_dim 128, block-causal with block 4).
  static transformer_config sdar_4b() {
    transformer_config c;
    c.family = "SDAR", c.layout = tensor_layout::qwen, c.qk_norm = true;
    c.attention = trained_attention::block_causal, c.attention_block = 4;
    c.d_model = 2560, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 128, c.n_layers = 36, c.mlp_hidden_size = 9728;
    c.vocab_size = c.embedding_size = 151936;
    c.rope_theta = 1e6, c.rms_norm_eps = 1e-6, c.max_sequence_length = 32768;
    c.mask_token_id = 151669, c.eos_token_id = 151643, c.stop_token_ids = {151643};
    c.bos_token_id = 151643, c.pad_token_id = 151643;
    return c;
  }
};

}  // namespace unmask
