// Binding checkpoint tensors to LLaDA roles: the exact Hugging Face layout
// loads unchanged; tensors that disagree with config.json are errors naming
// the tensor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/model/llada_model.hpp"

namespace unmask {
namespace {

using test::expect_error;
using test::tensor_spec;

const std::string mha = test::data_dir() + "/tiny_llada_mha";

TEST(LladaWeights, LoadsUntiedAndTiedCheckpoints) {
  const llada_model m = llada_model::load(mha);
  ASSERT_EQ(m.weights().layers.size(), 2u);
  EXPECT_EQ(m.weights().head.name, "model.transformer.ff_out.weight");
  EXPECT_EQ(m.weights().layers[1].ff_out.shape, (shape_t{64, 160}));
  EXPECT_EQ(m.weights().layers[0].q_proj.type, dtype::bf16);  // kept in file dtype

  const llada_model tied = llada_model::load(test::data_dir() + "/tiny_llada_gqa");
  EXPECT_EQ(tied.weights().head.data, tied.weights().wte.data);
  EXPECT_EQ(tied.weights().layers[0].k_proj.shape, (shape_t{32, 64}));
}

TEST(LladaWeights, WeightsAreViewsIntoTheMappedFile) {
  const llada_model m = llada_model::load(mha);
  // Zero copy: the tensor data lies inside the checkpoint's own tensor table.
  const tensor_ref& direct = m.tensors().tensor("model.transformer.blocks.0.up_proj.weight");
  EXPECT_EQ(m.weights().layers[0].up_proj.data, direct.data);
}

void expect_load_error(const std::function<void(std::vector<tensor_spec>&, nlohmann::json&)>& edit,
                       std::initializer_list<const char*> fragments) {
  test::scratch_dir dir;
  test::copy_checkpoint(mha, dir.str(), edit);
  expect_error<checkpoint_error>([&] { llada_model::load(dir.str()); }, fragments);
}

tensor_spec& find(std::vector<tensor_spec>& specs, const std::string& name) {
  return *std::find_if(specs.begin(), specs.end(), [&](const tensor_spec& s) { return s.name == name; });
}

TEST(LladaWeightsBadInput, MissingTensor) {
  expect_load_error(
      [](std::vector<tensor_spec>& specs, nlohmann::json&) {
        specs.erase(std::find_if(specs.begin(), specs.end(),
                                 [](const tensor_spec& s) { return s.name == "model.transformer.blocks.1.v_proj.weight"; }));
      },
      {"no tensor 'model.transformer.blocks.1.v_proj.weight'"});
}

TEST(LladaWeightsBadInput, ShapeDisagreesWithConfig) {
  // config.json claims GQA with 2 K/V heads; the file has 4.
  expect_load_error([](std::vector<tensor_spec>&, nlohmann::json& config) { config["n_kv_heads"] = 2; },
                    {"'model.transformer.blocks.0.k_proj.weight' has shape [64, 64]", "needs [32, 64]"});
  expect_load_error([](std::vector<tensor_spec>&, nlohmann::json& config) { config["mlp_hidden_size"] = 128; },
                    {"ff_proj.weight' has shape [160, 64]", "needs [128, 64]"});
}

TEST(LladaWeightsBadInput, DtypeIsNotAComputeType) {
  expect_load_error(
      [](std::vector<tensor_spec>& specs, nlohmann::json&) {
        tensor_spec& s = find(specs, "model.transformer.ln_f.weight");
        s.dtype = "I16";  // same byte size as BF16
      },
      {"'model.transformer.ln_f.weight' has dtype I16"});
}

TEST(LladaWeightsBadInput, UntiedConfigWithoutHead) {
  // A tied checkpoint relabelled as untied lacks model.transformer.ff_out.weight.
  expect_load_error(
      [](std::vector<tensor_spec>& specs, nlohmann::json&) {
        specs.erase(std::find_if(specs.begin(), specs.end(),
                                 [](const tensor_spec& s) { return s.name == "model.transformer.ff_out.weight"; }));
      },
      {"no tensor 'model.transformer.ff_out.weight'"});
}

TEST(LladaModelBadInput, MissingConfig) {
  test::scratch_dir dir;
  expect_error<file_error>([&] { llada_model::load(dir.str()); }, {"cannot open", "config.json"});
}

}  // namespace
}  // namespace unmask

namespace unmask {
namespace {

TEST(RandomModel, HasRealShapesAndIsDeterministic) {
  const llada_config one_b = llada_config::llada_1b_shape();
  EXPECT_EQ(one_b.d_model, 2048);
  EXPECT_EQ(one_b.mlp_hidden_size, 5632);
  llada_config c = one_b;  // the same shape, scaled down to keep the test fast
  c.n_layers = 2, c.d_model = 256, c.n_heads = c.n_kv_heads = 4, c.mlp_hidden_size = 704;
  c.vocab_size = c.embedding_size = 1000;
  c.mask_token_id = 999, c.eos_token_id = 998;
  const llada_model a = llada_model::random(c, 7), b = llada_model::random(c, 7), other = llada_model::random(c, 8);
  EXPECT_EQ(a.weights().layers[1].ff_proj.shape, (shape_t{704, 256}));
  EXPECT_EQ(a.weights().wte.type, dtype::bf16);
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
  const llada_config big = llada_config::llada_8b();
  EXPECT_EQ(big.head_dim(), 128);
}

}  // namespace
}  // namespace unmask
