// config.json of the Qwen layout: Dream, Fast-dLLM v2 and SDAR as published
// (the tiny checkpoints carry their keys), Qwen2 / Qwen3 as autoregressive
// peers; every key read or known, anything else an error naming the key.
#include <gtest/gtest.h>

#include <fstream>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/model/model_config.hpp"

namespace unmask {
namespace {

using test::expect_error;

nlohmann::json config_of(const std::string& model) {
  std::ifstream in(test::data_dir() + "/" + model + "/config.json");
  return nlohmann::json::parse(in);
}

// The config.json of Dream-org/Dream-v0-Instruct-7B (values from ../shared/SPEC.md section 10).
nlohmann::json dream_7b_config() {
  return nlohmann::json::parse(R"({
    "architectures": ["DreamModel"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151643,
    "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02, "intermediate_size": 18944,
    "mask_token_id": 151666, "max_position_embeddings": 131072, "max_window_layers": 28, "model_type": "Dream",
    "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4, "pad_token_id": 151643,
    "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000.0, "sliding_window": null,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.46.2", "use_cache": false,
    "use_sliding_window": false, "vocab_size": 152064})");
}

TEST(QwenConfig, ReadsDream) {
  const transformer_config c = read_model_config(dream_7b_config(), "dream");
  EXPECT_EQ(c.family, "Dream");
  EXPECT_EQ(c.layout, tensor_layout::qwen);
  EXPECT_EQ(c.objective, training_objective::masked_diffusion);
  EXPECT_EQ(c.attention, trained_attention::bidirectional);
  EXPECT_TRUE(c.shifted_logits);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_FALSE(c.tied_head);
  EXPECT_EQ(c.d_model, 3584);
  EXPECT_EQ(c.n_heads, 28);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.mlp_hidden_size, 18944);
  EXPECT_EQ(c.vocab_size, 152064);
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.max_sequence_length, 131072);
  EXPECT_EQ(c.mask_token_id, 151666);
  EXPECT_EQ(c.eos_token_id, 151643);
  const transformer_config preset = transformer_config::dream_7b();
  EXPECT_EQ(preset.d_model, c.d_model);
  EXPECT_EQ(preset.mlp_hidden_size, c.mlp_hidden_size);
  EXPECT_EQ(preset.n_kv_heads, c.n_kv_heads);
}

TEST(QwenConfig, ReadsTheTinyCheckpointsOfEachFamily) {
  const transformer_config dream = load_model_config(test::data_dir() + "/tiny_dream/config.json");
  EXPECT_EQ(dream.family, "Dream");
  EXPECT_EQ(dream.bos_token_id, 97);

  const transformer_config fast = load_model_config(test::data_dir() + "/tiny_fast_dllm_v2/config.json");
  EXPECT_EQ(fast.family, "Fast-dLLM v2");
  EXPECT_EQ(fast.attention, trained_attention::block_causal);
  EXPECT_EQ(fast.attention_block, 4);
  EXPECT_TRUE(fast.shifted_logits);
  EXPECT_TRUE(fast.qkv_bias);
  EXPECT_TRUE(fast.tied_head);

  const transformer_config sdar = load_model_config(test::data_dir() + "/tiny_sdar/config.json");
  EXPECT_EQ(sdar.family, "SDAR");
  EXPECT_EQ(sdar.attention, trained_attention::block_causal);
  EXPECT_EQ(sdar.attention_block, 4);
  EXPECT_FALSE(sdar.shifted_logits);
  EXPECT_FALSE(sdar.qkv_bias);
  EXPECT_TRUE(sdar.qk_norm);
  EXPECT_EQ(sdar.head_dim, 32);  // apart from hidden_size / heads = 16
  EXPECT_EQ(sdar.q_width(), 128);
  EXPECT_EQ(sdar.mask_token_id, 99);
}

TEST(QwenConfig, FamilyDefaultsAndAutoregressivePeers) {
  nlohmann::json j = config_of("tiny_fast_dllm_v2");
  j.erase("bd_size");
  EXPECT_EQ(read_model_config(j, "c").attention_block, 32);  // Fast-dLLM v2's default
  j = config_of("tiny_sdar");
  j.erase("block_size");
  EXPECT_EQ(read_model_config(j, "c").attention_block, 4);  // SDAR's default

  j = dream_7b_config();
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["model_type"] = "qwen2";
  j.erase("mask_token_id");
  j["eos_token_id"] = {151645, 151643};
  const transformer_config qwen2 = read_model_config(j, "c");
  EXPECT_EQ(qwen2.objective, training_objective::autoregressive);
  EXPECT_EQ(qwen2.attention, trained_attention::causal);
  EXPECT_FALSE(qwen2.shifted_logits);
  EXPECT_EQ(qwen2.eos_token_id, 151645);
  EXPECT_TRUE(qwen2.is_stop_token(151643));
  EXPECT_TRUE(qwen2.is_stop_token(151645));
  EXPECT_FALSE(qwen2.is_stop_token(151644));

  j = config_of("tiny_sdar");
  for (const char* key : {"block_size", "mask_token_id", "attn_implementation", "debug", "ep_size",
                          "fuse_cross_entropy", "micro_forward", "skip_checkpoint", "use_deepep"})
    j.erase(key);
  j["architectures"] = {"Qwen3ForCausalLM"};
  j["model_type"] = "qwen3";
  const transformer_config qwen3 = read_model_config(j, "c");
  EXPECT_EQ(qwen3.family, "Qwen3");
  EXPECT_TRUE(qwen3.qk_norm);
  EXPECT_EQ(qwen3.attention, trained_attention::causal);
}

TEST(QwenConfigBadInput, UnknownKeysAreNamed) {
  nlohmann::json j = config_of("tiny_dream");
  j["partial_rotary_factor"] = 0.5;
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"unknown key 'partial_rotary_factor'", "Dream"});
  j = config_of("tiny_dream");
  j["block_size"] = 4;  // SDAR's key, not Dream's
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"'block_size'", "Dream"});
}

TEST(QwenConfigBadInput, UnsupportedFeaturesAreRejectedByName) {
  const std::pair<const char*, nlohmann::json> cases[] = {
      {"rope_scaling", nlohmann::json::parse(R"({"type": "yarn", "factor": 4.0})")},
      {"use_sliding_window", true},
      {"hidden_act", "gelu"},
      {"attention_bias", true},
      {"layer_types", {"full_attention", "sliding_attention"}}};
  for (const auto& [key, value] : cases) {
    nlohmann::json j = config_of("tiny_sdar");
    j[key] = value;
    expect_error<config_error>([&] { read_model_config(j, "c"); }, {key, "not supported"});
  }
}

TEST(QwenConfigBadInput, InconsistentOrMissing) {
  nlohmann::json j = config_of("tiny_dream");
  j.erase("mask_token_id");
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"missing key 'mask_token_id'"});
  j = config_of("tiny_dream");
  j["model_type"] = "qwen2";
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"model_type \"qwen2\" does not match", "DreamModel"});
  j = config_of("tiny_dream");
  j["mask_token_id"] = 98;  // the eos id
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"mask_token_id 98 is also an end-of-sequence id"});
  j = config_of("tiny_dream");
  j["eos_token_id"] = {98, 100};
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"stop token id 100 is outside the vocabulary"});
  j = config_of("tiny_dream");
  j["hidden_size"] = 66;
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"hidden_size 66 is not a multiple of num_attention_heads 4"});
  j = config_of("tiny_dream");
  j["rope_theta"] = "big";
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"'rope_theta' must be a number"});
  j = config_of("tiny_fast_dllm_v2");
  j["bd_size"] = 0;
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"block-causal model needs a positive block size"});
  j = config_of("tiny_dream");
  j["architectures"] = {"MistralForCausalLM"};
  j.erase("model_type");
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"unknown architecture", "MistralForCausalLM", "DreamModel"});
}

}  // namespace
}  // namespace unmask
