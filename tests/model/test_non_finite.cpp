// NaN or infinity in a forward pass is an error that says where it came from:
// a weight tensor holding one (named with the element), or, with finite
// weights, the first layer whose output overflowed, never a bare "no finite
// logit" that names nothing. Also: the rotary table is sized by the
// positions used, so a configuration's huge max_sequence_length costs nothing.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/ar_decoder.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/model/non_finite.hpp"
#include "unmask/model/transformer_forward.hpp"

namespace unmask {
namespace {

using test::expect_error;
using test::tensor_spec;

const std::string mha_dir = test::data_dir() + "/tiny_llada_mha";

void set_bf16(tensor_spec& s, std::size_t element, std::uint16_t bits) {
  std::memcpy(&s.bytes[2 * element], &bits, 2);
}

tensor_spec& find_spec(std::vector<tensor_spec>& specs, const std::string& name) {
  for (tensor_spec& s : specs)
    if (s.name == name) return s;
  throw std::runtime_error("no " + name);
}

diffusion_settings short_run() {
  diffusion_settings s;
  s.layout = {8, 8, 4};
  return s;
}

TEST(NonFinite, ElementsAreFoundByTheirBits) {
  const float f32[] = {1.0f, -0.0f, std::numeric_limits<float>::infinity(), 2.0f};
  tensor_ref t{f32, dtype::f32, shape_t{4}, "t"};
  EXPECT_EQ(first_non_finite_element(t), 2);
  const std::uint16_t bf16[] = {0x3f80, 0x7f7f, 0xff80, 0x7fc0};  // 1, max finite, -inf, NaN
  t = tensor_ref{bf16, dtype::bf16, shape_t{4}, "t"};
  EXPECT_EQ(first_non_finite_element(t), 2);
  const std::uint16_t f16[] = {0x3c00, 0x7bff, 0x8000, 0x7e00};  // 1, max finite, -0, NaN
  t = tensor_ref{f16, dtype::f16, shape_t{4}, "t"};
  EXPECT_EQ(first_non_finite_element(t), 3);
  const float finite[] = {1.0f, 3.4e38f};
  t = tensor_ref{finite, dtype::f32, shape_t{2}, "t"};
  EXPECT_EQ(first_non_finite_element(t), -1);
}

TEST(NonFinite, ANanWeightIsNamedByEveryDecoder) {
  test::scratch_dir dir;
  test::copy_checkpoint(mha_dir, dir.str(), [](std::vector<tensor_spec>& specs, nlohmann::json&) {
    set_bf16(find_spec(specs, "model.transformer.blocks.1.up_proj.weight"), 7, 0x7fc0);
  });
  const transformer_model m = transformer_model::load(dir.str());
  EXPECT_NE(first_non_finite_weight(m.weights()).find("model.transformer.blocks.1.up_proj.weight"), std::string::npos);
  diffusion_decoder<cpu_backend> diffusion(m, short_run());
  expect_error<numeric_error>([&] { diffusion.generate({{{5, 17, 42}, 0}}); },
                              {"no token has a finite logit", "tensor 'model.transformer.blocks.1.up_proj.weight'",
                               "element 7 of shape [160, 64]"});
  ar_settings a;
  a.max_new_tokens = 4;
  ar_decoder<cpu_backend> ar(m, a);
  expect_error<numeric_error>([&] { ar.generate({{{5, 17, 42}, 0}}); },
                              {"tensor 'model.transformer.blocks.1.up_proj.weight'"});
}

TEST(NonFinite, AnOverflowWithFiniteWeightsNamesTheLayer) {
  // Every weight of layer 0's down projection at bf16's largest finite value:
  // the MLP output overflows to infinity in fp32.
  test::scratch_dir dir;
  test::copy_checkpoint(mha_dir, dir.str(), [](std::vector<tensor_spec>& specs, nlohmann::json&) {
    tensor_spec& down = find_spec(specs, "model.transformer.blocks.0.ff_out.weight");
    for (std::size_t i = 0; i < down.bytes.size() / 2; ++i) set_bf16(down, i, 0x7f7f);
  });
  const transformer_model m = transformer_model::load(dir.str());
  EXPECT_EQ(first_non_finite_weight(m.weights()), "");
  diffusion_decoder<cpu_backend> diffusion(m, short_run());
  expect_error<numeric_error>([&] { diffusion.generate({{{5, 17, 42}, 0}}); },
                              {"layer 0: the MLP output is not finite", "no weight holds a NaN"});
}

TEST(NonFinite, AHealthyModelIsUnaffected) {
  const transformer_model m = transformer_model::load(mha_dir);
  EXPECT_EQ(first_non_finite_weight(m.weights()), "");
  diffusion_decoder<cpu_backend> diffusion(m, short_run());
  EXPECT_EQ(diffusion.generate({{{5, 17, 42}, 0}}).sequences.size(), 1u);
}

TEST(RotaryTable, IsSizedByThePositionsUsedNotTheConfiguration) {
  // A model that claims 2^31 - 1 positions: a table for all of them would
  // need 2^31 x head_dim floats (std::bad_alloc); one for the canvas is tiny.
  test::scratch_dir dir;
  test::copy_checkpoint(mha_dir, dir.str(), [](std::vector<tensor_spec>&, nlohmann::json& config) {
    config["max_sequence_length"] = 2147483647;
  });
  const transformer_model m = transformer_model::load(dir.str());
  const transformer_model reference = transformer_model::load(mha_dir);
  transformer_forward<cpu_backend> huge(m), normal(reference);
  const std::vector<std::int32_t> tokens = {5, 17, 42, 99, 99, 3};
  std::vector<float> a(tokens.size() * 100), b(a.size());
  huge({tokens.data(), 1, 6}, attention_mask::full(), a.data());
  normal({tokens.data(), 1, 6}, attention_mask::full(), b.data());
  EXPECT_EQ(a, b);
  // Growing past the first table keeps the result (positions beyond 1024).
  const std::vector<std::int32_t> many(1500, 7);
  std::vector<float> c(many.size() * 100);
  huge({many.data(), 1, 1500}, attention_mask::full(), c.data());
  EXPECT_TRUE(std::all_of(c.begin(), c.end(), [](float v) { return std::isfinite(v); }));
}

}  // namespace
}  // namespace unmask
