// Binding checkpoint tensors to the transformer's roles under each layout's
// names (LLaDA; Qwen2 for Dream and Fast-dLLM v2; Qwen3 for SDAR): the exact
// Hugging Face layouts load unchanged; tensors that disagree with config.json,
// are missing or are left over are errors naming the tensor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/model/transformer_model.hpp"

namespace unmask {
namespace {

using test::expect_error;
using test::tensor_spec;

const std::string mha = test::data_dir() + "/tiny_llada_mha";

TEST(Weights, LoadsUntiedAndTiedCheckpoints) {
  const transformer_model m = transformer_model::load(mha);
  ASSERT_EQ(m.weights().layers.size(), 2u);
  EXPECT_EQ(m.weights().head.name, "model.transformer.ff_out.weight");
  EXPECT_EQ(m.weights().layers[1].down_proj.shape, (shape_t{64, 160}));
  EXPECT_EQ(m.weights().layers[0].q_proj.type, dtype::bf16);  // kept in file dtype

  const transformer_model tied = transformer_model::load(test::data_dir() + "/tiny_llada_gqa");
  EXPECT_EQ(tied.weights().head.data, tied.weights().embedding.data);
  EXPECT_EQ(tied.weights().layers[0].k_proj.shape, (shape_t{32, 64}));
}

TEST(Weights, LoadsTheQwenLayouts) {
  const transformer_model dream = transformer_model::load(test::data_dir() + "/tiny_dream");
  const transformer_layer_weights& d0 = dream.weights().layers[0];
  EXPECT_EQ(d0.q_proj.name, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(d0.q_bias.name, "model.layers.0.self_attn.q_proj.bias");
  EXPECT_EQ(d0.k_bias.shape, (shape_t{32}));
  EXPECT_EQ(d0.q_norm.data, nullptr);
  EXPECT_EQ(d0.gate_proj.name, "model.layers.0.mlp.gate_proj.weight");
  EXPECT_EQ(d0.mlp_norm.name, "model.layers.0.post_attention_layernorm.weight");
  EXPECT_EQ(dream.weights().head.name, "lm_head.weight");
  EXPECT_EQ(dream.weights().final_norm.name, "model.norm.weight");

  const transformer_model fast = transformer_model::load(test::data_dir() + "/tiny_fast_dllm_v2");  // sharded, tied
  EXPECT_EQ(fast.weights().head.data, fast.weights().embedding.data);

  const transformer_model sdar = transformer_model::load(test::data_dir() + "/tiny_sdar");
  const transformer_layer_weights& s1 = sdar.weights().layers[1];
  EXPECT_EQ(s1.q_norm.name, "model.layers.1.self_attn.q_norm.weight");
  EXPECT_EQ(s1.k_norm.shape, (shape_t{32}));
  EXPECT_EQ(s1.q_proj.shape, (shape_t{128, 64}));  // 4 heads of 32
  EXPECT_EQ(s1.o_proj.shape, (shape_t{64, 128}));
  EXPECT_EQ(s1.q_bias.data, nullptr);
}

TEST(WeightsBadInput, LeftOverTensorsAreNamed) {
  // A config with fewer layers than the checkpoint, or a tied head beside a
  // head tensor, would silently ignore weights.
  test::scratch_dir dir;
  test::copy_checkpoint(mha, dir.str(), [](std::vector<tensor_spec>&, nlohmann::json& config) { config["n_layers"] = 1; });
  expect_error<checkpoint_error>([&] { transformer_model::load(dir.str()); },
                                 {"tensor 'model.transformer.blocks.1.", "is not used", "1 layers"});
  test::scratch_dir tied;
  test::copy_checkpoint(mha, tied.str(), [](std::vector<tensor_spec>&, nlohmann::json& config) { config["weight_tying"] = true; });
  expect_error<checkpoint_error>([&] { transformer_model::load(tied.str()); },
                                 {"tensor 'model.transformer.ff_out.weight' is not used", "tied head"});
  test::scratch_dir biased;  // a Dream checkpoint relabelled as SDAR (Qwen3 blocks: no biases)
  test::copy_checkpoint(test::data_dir() + "/tiny_dream", biased.str(), [](std::vector<tensor_spec>& specs, nlohmann::json& config) {
    config["architectures"] = {"SDARForCausalLM"};
    config["model_type"] = "sdar";
    for (std::int64_t i = 0; i < 2; ++i)
      for (const char* t : {"q_norm", "k_norm"}) {
        tensor_spec s;
        s.name = "model.layers." + std::to_string(i) + ".self_attn." + t + ".weight";
        s.dtype = "BF16";
        s.shape = {16};
        s.bytes.assign(32, '\0');
        specs.push_back(s);
      }
  });
  expect_error<checkpoint_error>([&] { transformer_model::load(biased.str()); }, {"_proj.bias' is not used", "no q/k/v bias"});
}

TEST(WeightsBadInput, ALayerCountBeyondTheCheckpointIsRefusedBeforeAnythingIsSized) {
  // 10^15 layers would make a vector of 10^15 layer records (std::length_error
  // or std::bad_alloc) before the first missing tensor was noticed.
  test::scratch_dir dir;
  test::copy_checkpoint(mha, dir.str(), [](std::vector<tensor_spec>&, nlohmann::json& config) {
    config["n_layers"] = std::int64_t(1'000'000'000'000'000);
  });
  expect_error<config_error>([&] { transformer_model::load(dir.str()); }, {"n_layers", "larger than unmask supports"});
  test::scratch_dir many;
  test::copy_checkpoint(mha, many.str(), [](std::vector<tensor_spec>&, nlohmann::json& config) {
    config["n_layers"] = 2'000'000'000;
  });
  expect_error<checkpoint_error>([&] { transformer_model::load(many.str()); },
                                 {"config.json counts 2000000000 layers", "holds 21 tensors",
                                  "no tensor 'model.transformer.blocks.2.attn_norm.weight'"});
}

TEST(RandomModel, NamesItsTensorsByTheLayout) {
  transformer_config c = transformer_config::sdar_4b();
  c.n_layers = 1, c.d_model = 64, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 32, c.mlp_hidden_size = 96;
  c.vocab_size = c.embedding_size = 200, c.mask_token_id = 199, c.eos_token_id = 198, c.stop_token_ids = {198};
  c.bos_token_id = c.pad_token_id = 198;
  const transformer_model m = transformer_model::random(c, 3);
  EXPECT_EQ(m.weights().layers[0].q_norm.name, "model.layers.0.self_attn.q_norm.weight");
  EXPECT_EQ(load_as_float(m.weights().layers[0].k_norm.data, dtype::bf16, 3), 1.0f);
  EXPECT_EQ(m.tensors().names().size(), 1u + 11u + 1u + 1u);
  transformer_config d = transformer_config::dream_7b();
  d.n_layers = 1, d.d_model = 64, d.n_heads = 4, d.n_kv_heads = 2, d.head_dim = 16, d.mlp_hidden_size = 96;
  d.vocab_size = d.embedding_size = 200, d.mask_token_id = 199, d.eos_token_id = 198, d.stop_token_ids = {198};
  d.bos_token_id = d.pad_token_id = 197;
  const transformer_model dm = transformer_model::random(d, 3);
  EXPECT_EQ(dm.weights().layers[0].v_bias.shape, (shape_t{32}));
  EXPECT_NE(load_as_float(dm.weights().layers[0].v_bias.data, dtype::bf16, 0), 0.0f);
}

TEST(Weights, WeightsAreViewsIntoTheMappedFile) {
  const transformer_model m = transformer_model::load(mha);
  // Zero copy: the tensor data lies inside the checkpoint's own tensor table.
  const tensor_ref& direct = m.tensors().tensor("model.transformer.blocks.0.up_proj.weight");
  EXPECT_EQ(m.weights().layers[0].up_proj.data, direct.data);
}

void expect_load_error(const std::function<void(std::vector<tensor_spec>&, nlohmann::json&)>& edit,
                       std::initializer_list<const char*> fragments) {
  test::scratch_dir dir;
  test::copy_checkpoint(mha, dir.str(), edit);
  expect_error<checkpoint_error>([&] { transformer_model::load(dir.str()); }, fragments);
}

tensor_spec& find(std::vector<tensor_spec>& specs, const std::string& name) {
  return *std::find_if(specs.begin(), specs.end(), [&](const tensor_spec& s) { return s.name == name; });
}

TEST(WeightsBadInput, MissingTensor) {
  expect_load_error(
      [](std::vector<tensor_spec>& specs, nlohmann::json&) {
        specs.erase(std::find_if(specs.begin(), specs.end(),
                                 [](const tensor_spec& s) { return s.name == "model.transformer.blocks.1.v_proj.weight"; }));
      },
      {"no tensor 'model.transformer.blocks.1.v_proj.weight'"});
}

TEST(WeightsBadInput, ShapeDisagreesWithConfig) {
  // config.json claims GQA with 2 K/V heads; the file has 4.
  expect_load_error([](std::vector<tensor_spec>&, nlohmann::json& config) { config["n_kv_heads"] = 2; },
                    {"'model.transformer.blocks.0.k_proj.weight' has shape [64, 64]", "needs [32, 64]"});
  expect_load_error([](std::vector<tensor_spec>&, nlohmann::json& config) { config["mlp_hidden_size"] = 128; },
                    {"ff_proj.weight' has shape [160, 64]", "needs [128, 64]"});
}

TEST(WeightsBadInput, DtypeIsNotAComputeType) {
  expect_load_error(
      [](std::vector<tensor_spec>& specs, nlohmann::json&) {
        tensor_spec& s = find(specs, "model.transformer.ln_f.weight");
        s.dtype = "I16";  // same byte size as BF16
      },
      {"'model.transformer.ln_f.weight' has dtype I16"});
}

TEST(WeightsBadInput, UntiedConfigWithoutHead) {
  // A tied checkpoint relabelled as untied lacks model.transformer.ff_out.weight.
  expect_load_error(
      [](std::vector<tensor_spec>& specs, nlohmann::json&) {
        specs.erase(std::find_if(specs.begin(), specs.end(),
                                 [](const tensor_spec& s) { return s.name == "model.transformer.ff_out.weight"; }));
      },
      {"no tensor 'model.transformer.ff_out.weight'"});
}

TEST(ModelBadInput, MissingConfig) {
  test::scratch_dir dir;
  expect_error<file_error>([&] { transformer_model::load(dir.str()); }, {"cannot open", "config.json"});
}

}  // namespace
}  // namespace unmask

namespace unmask {
namespace {

TEST(RandomModel, HasRealShapesAndIsDeterministic) {
  const transformer_config one_b = transformer_config::llada_1b_shape();
  EXPECT_EQ(one_b.d_model, 2048);
  EXPECT_EQ(one_b.mlp_hidden_size, 5632);
  transformer_config c = one_b;  // the same shape, scaled down to keep the test fast
  c.n_layers = 2, c.d_model = 256, c.n_heads = c.n_kv_heads = 4, c.head_dim = 64, c.mlp_hidden_size = 704;
  c.vocab_size = c.embedding_size = 1000;
  c.mask_token_id = 999, c.eos_token_id = 998, c.stop_token_ids = {998}, c.bos_token_id = c.pad_token_id = -1;
  const transformer_model a = transformer_model::random(c, 7), b = transformer_model::random(c, 7), other = transformer_model::random(c, 8);
  EXPECT_EQ(a.weights().layers[1].gate_proj.shape, (shape_t{704, 256}));
  EXPECT_EQ(a.weights().embedding.type, dtype::bf16);
  const auto* wa = static_cast<const std::uint16_t*>(a.weights().layers[0].q_proj.data);
  const auto* wb = static_cast<const std::uint16_t*>(b.weights().layers[0].q_proj.data);
  const auto* wo = static_cast<const std::uint16_t*>(other.weights().layers[0].q_proj.data);
  EXPECT_TRUE(std::equal(wa, wa + 1000, wb));
  EXPECT_FALSE(std::equal(wa, wa + 1000, wo));
  double sum = 0, sq = 0;
  const auto& q = a.weights().layers[0].q_proj;
  for (std::int64_t i = 0; i < q.shape.numel(); ++i) {
    const double v = load_as_float(q.data, q.type, std::size_t(i));
    sum += v, sq += v * v;
  }
  const double n = double(q.shape.numel());
  EXPECT_NEAR(sum / n, 0.0, 5e-4);  // six standard errors for 65,536 weights
  EXPECT_NEAR(std::sqrt(sq / n), 0.02, 1e-3);
  EXPECT_EQ(load_as_float(a.weights().layers[0].attn_norm.data, dtype::bf16, 5), 1.0f);
  EXPECT_EQ(a.directory(), "<random>");
  const transformer_config big = transformer_config::llada_8b();
  EXPECT_EQ(big.head_dim, 128);
}

}  // namespace
}  // namespace unmask
