// config.json parsing: LLaDA's own key names, every required key checked,
// unsupported features rejected by name.
#include <gtest/gtest.h>

#include <fstream>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/model/model_config.hpp"

namespace unmask {
namespace {

using test::expect_error;

nlohmann::json tiny_config() {
  std::ifstream in(test::data_dir() + "/tiny_llada_mha/config.json");
  return nlohmann::json::parse(in);
}

// The config.json of GSAI-ML/LLaDA-8B-Base (values from ../shared/SPEC.md section 8).
nlohmann::json llada_8b_config() {
  return nlohmann::json::parse(R"({
    "activation_type": "silu", "alibi": false, "architectures": ["LLaDAModelLM"], "attention_layer_norm": false,
    "block_type": "llama", "d_model": 4096, "embedding_size": 126464, "eos_token_id": 126081,
    "include_bias": false, "include_qkv_bias": false, "input_emb_norm": false, "layer_norm_type": "rms",
    "mask_token_id": 126336, "max_sequence_length": 4096, "mlp_hidden_size": 12288, "mlp_ratio": 4,
    "model_type": "llada", "multi_query_attention": null, "n_heads": 32, "n_kv_heads": 32, "n_layers": 32,
    "pad_token_id": 126081, "rms_norm_eps": 1e-05, "rope": true, "rope_full_precision": true,
    "rope_theta": 500000.0, "scale_logits": false, "vocab_size": 126464, "weight_tying": false})");
}

TEST(LladaConfig, ReadsTheTinyCheckpointConfig) {
  const transformer_config c = load_model_config(test::data_dir() + "/tiny_llada_gqa/config.json");
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.group_size(), 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.mlp_hidden_size, 160);
  EXPECT_EQ(c.vocab_size, 100);
  EXPECT_EQ(c.mask_token_id, 99);
  EXPECT_TRUE(c.tied_head);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
}

TEST(LladaConfig, ReadsTheLlada8BConfig) {
  const transformer_config c = read_model_config(llada_8b_config(), "config.json");
  EXPECT_EQ(c.n_layers, 32);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.embedding_size, 126464);
  EXPECT_EQ(c.mask_token_id, 126336);
  EXPECT_EQ(c.eos_token_id, 126081);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_FALSE(c.tied_head);
}

TEST(LladaConfig, NullKvHeadsMeansOnePerQueryHead) {
  nlohmann::json j = tiny_config();
  j["n_kv_heads"] = nullptr;
  EXPECT_EQ(read_model_config(j, "c").n_kv_heads, 4);
}

TEST(LladaConfigBadInput, EveryRequiredKeyIsNamedWhenMissing) {
  for (const char* key : {"d_model", "n_heads", "n_kv_heads", "n_layers", "mlp_hidden_size", "vocab_size", "rope_theta",
                          "rms_norm_eps", "max_sequence_length", "mask_token_id", "eos_token_id", "weight_tying",
                          "include_bias"}) {
    nlohmann::json j = tiny_config();
    j.erase(key);
    expect_error<config_error>([&] { read_model_config(j, "my/config.json"); },
                               {"my/config.json", (std::string("missing key '") + key + "'").c_str()});
  }
}

TEST(LladaConfigBadInput, WrongTypes) {
  nlohmann::json j = tiny_config();
  j["d_model"] = "64";
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"'d_model' must be an integer, got string"});
  j = tiny_config();
  j["weight_tying"] = 1;
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"'weight_tying' must be true or false"});
  expect_error<config_error>([&] { read_model_config(nlohmann::json::array(), "c"); }, {"not a JSON object"});
}

TEST(LladaConfigBadInput, UnknownArchitecture) {
  nlohmann::json j = tiny_config();
  j["architectures"] = {"LlamaForCausalLM"};
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"unknown architecture", "LlamaForCausalLM"});
  j = tiny_config();
  j["model_type"] = "qwen2";
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"unknown model_type \"qwen2\""});
  j = tiny_config();
  j.erase("architectures");
  j.erase("model_type");
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"names no architecture"});
}

TEST(LladaConfigBadInput, UnsupportedFeaturesAreRejectedByName) {
  const std::pair<const char*, nlohmann::json> cases[] = {
      {"include_bias", true}, {"alibi", true}, {"attention_layer_norm", true}, {"scale_logits", true},
      {"block_type", "sequential"}, {"activation_type", "gelu"}, {"layer_norm_type", "default"}, {"rope", false}};
  for (const auto& [key, value] : cases) {
    nlohmann::json j = tiny_config();
    j[key] = value;
    expect_error<config_error>([&] { read_model_config(j, "c"); }, {key, "not supported"});
  }
}

TEST(LladaConfigBadInput, InconsistentShapes) {
  nlohmann::json j = tiny_config();
  j["n_heads"] = 5;
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"d_model 64 is not a multiple of n_heads 5"});
  j = tiny_config();
  j["n_kv_heads"] = 3;
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"n_heads 4 is not a multiple of n_kv_heads 3"});
  j = tiny_config();
  j["mask_token_id"] = 100;
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"mask_token_id 100 is outside the vocabulary"});
  j = tiny_config();
  j["n_layers"] = 0;
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"'n_layers' must be positive"});
  j = tiny_config();
  j["embedding_size"] = 50;
  expect_error<config_error>([&] { read_model_config(j, "c"); }, {"embedding_size 50 is smaller than vocab_size"});
}

TEST(LladaConfigBadInput, SizesBeyond32BitsAreRefused) {
  // Products of sizes (n_heads * head_dim, rows * d_model) must not overflow,
  // and nothing may be sized by an absurd value.
  for (const char* key : {"d_model", "n_layers", "mlp_hidden_size", "max_sequence_length"}) {
    nlohmann::json j = tiny_config();
    j[key] = std::int64_t(1) << 40;
    if (std::string(key) == "d_model") j["n_heads"] = 1, j["n_kv_heads"] = 1;
    expect_error<config_error>([&] { read_model_config(j, "c"); }, {key, "larger than unmask supports"});
  }
}

TEST(LladaConfigBadInput, FloatsAreCheckedAfterNarrowingToFp32) {
  // rope_theta 1e-300 is positive as a double but 0 in fp32 (every
  // frequency infinite); rms_norm_eps 1e300 becomes infinity.
  for (const auto& [key, value] : {std::pair<const char*, double>{"rope_theta", 1e-300}, {"rope_theta", 1e39},
                                   {"rms_norm_eps", 1e300}, {"rms_norm_eps", 1e-45}, {"rms_norm_eps", -1e-5}}) {
    nlohmann::json j = tiny_config();
    j[key] = value;
    expect_error<config_error>([&] { read_model_config(j, "c"); }, {key, "fp32's normal range"});
  }
  nlohmann::json j = tiny_config();
  j["rope_theta"] = 1e30;  // large but representable
  EXPECT_EQ(read_model_config(j, "c").rope_theta, 1e30);
}

TEST(LladaConfigBadInput, MalformedJsonFile) {
  test::scratch_dir dir;
  test::write_text(dir.file("config.json"), "{\"d_model\": 64,");
  expect_error<file_error>([&] { load_model_config(dir.file("config.json")); }, {"malformed JSON", "config.json"});
  expect_error<file_error>([&] { load_model_config(dir.file("absent.json")); }, {"cannot open", "absent.json"});
}

}  // namespace
}  // namespace unmask
